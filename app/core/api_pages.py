"""The documentation pages: `/openapi.json`, `/docs` (Swagger UI) and `/redoc`.

Their scripts and styles come from the installed `fastapi-offline` package, never a CDN.
`/openapi.json` names the server as the client reached it: the scheme and host a trusted proxy
forwarded (uvicorn's proxy headers, FORWARDED_ALLOW_IPS) and the root path, so "Try it out"
and generated clients call the public address, not the worker's.
"""

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

OPENAPI_URL = "/openapi.json"
ASSETS_URL = "/static-offline-docs"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
# The pages load nothing from elsewhere: ReDoc's bundle would fetch its vendor's logo from a
# CDN, and the page of an intranet deployment must not call out. Inline: each page's start-up
# script and the bundles' styles; blob: ReDoc's search worker.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'"
)


def offline(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = PAGE_POLICY
    return page


def server_url(request: Request) -> str:
    """The API's base URL as this request reached it, without a trailing slash."""
    return str(request.base_url).rstrip("/")


def install_api_pages(app: FastAPI) -> None:
    """Serve the three pages; `app` is built with `openapi_url`, `docs_url`, `redoc_url` None."""
    app.mount(ASSETS_URL, StaticFiles(packages=[("fastapi_offline", "static")]), name="assets")

    @app.get(OPENAPI_URL, include_in_schema=False)
    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse({**app.openapi(), "servers": [{"url": server_url(request)}]})

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return offline(
            get_swagger_ui_html(
                openapi_url=root + OPENAPI_URL,
                title=f"{app.title} - Swagger UI",
                oauth2_redirect_url=root + OAUTH2_REDIRECT_URL,
                swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
                swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
                swagger_ui_parameters=app.swagger_ui_parameters,
            )
        )

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return offline(
            get_redoc_html(
                openapi_url=root + OPENAPI_URL,
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
                redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
                with_google_fonts=False,
            )
        )
