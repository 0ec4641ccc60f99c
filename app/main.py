import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app.admin import install_admin
from app.api import health
from app.api.router import include_api, openapi_tags
from app.core.api_pages import install_api_pages
from app.core.config import Settings, get_settings
from app.core.database import Database
from app.core.db_errors import install_database_error_handlers
from app.core.errors import install_error_handlers
from app.core.logging import configure_logging
from app.core.middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from app.core.openapi import api_info, build_openapi
from app.core.replica import ReadYourWritesMiddleware
from app.core.streams import StreamWriteTimeoutMiddleware
from app.crud.sync.live import Feed, close_on_exit_signals

# What browser code may read (the totals the frontend dialects' providers read included)...
EXPOSED_HEADERS = [
    "ETag",
    "Location",
    "Link",
    "X-Total-Count",
    "Content-Range",
    "X-Request-ID",
    "Retry-After",
]
# ...and send (`Range`: ra-data-simple-rest sends it with every list).
ALLOWED_HEADERS = [
    "Authorization",
    "Content-Type",
    "Range",
    "If-Match",
    "If-None-Match",
    "Idempotency-Key",
    "X-Device-Token",
    "X-Request-ID",
]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.LOG_LEVEL)

    # Made here, opened by the lifespan: the admin's views are built on its sessionmaker.
    db = Database(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.db, app.state.engine, app.state.sessionmaker = db, db.engine, db.sessionmaker
        app.state.feed = feed = Feed(db, settings)
        close_on_exit_signals(feed)
        await db.open()
        # Start-up leaves some 100,000 long-lived objects (schemas, models, routes): frozen,
        # a full collection no longer walks them all (a 35 ms pause, a busy worker's p99).
        gc.collect()
        gc.freeze()
        yield
        feed.close()
        await db.close()

    app = FastAPI(
        **api_info(settings),
        openapi_url=None,  # served by install_api_pages, with the assets on disk
        docs_url=None,
        redoc_url=None,
        openapi_tags=openapi_tags(),
        lifespan=lifespan,
        swagger_ui_parameters={"persistAuthorization": True},
    )
    app.state.settings = settings
    install_error_handlers(app)
    install_database_error_handlers(app)
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]  # FastAPI's documented override
    install_api_pages(app)
    app.include_router(health.router)
    include_api(app)
    if settings.ADMIN_ENABLED:
        install_admin(app, db.sessionmaker, settings)
    if settings.CORS_ORIGINS:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.CORS_ORIGINS,
            allow_credentials="*" not in settings.CORS_ORIGINS,
            allow_methods=["*"],
            allow_headers=ALLOWED_HEADERS,
            expose_headers=EXPOSED_HEADERS,
            max_age=settings.CORS_MAX_AGE,
        )
    if settings.DATABASE_REPLICA_URL and not settings.is_sqlite:
        production = settings.ENVIRONMENT == "production"
        seconds = settings.REPLICA_STICKY_SECONDS
        app.add_middleware(ReadYourWritesMiddleware, seconds=seconds, secure=production)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.MAX_BODY_BYTES)
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(StreamWriteTimeoutMiddleware, seconds=settings.SSE_SEND_TIMEOUT)
    return app
