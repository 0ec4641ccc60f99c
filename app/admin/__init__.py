"""`/admin`: pages for operators over every registered resource and the users (starlette-admin),
for active superusers only (app/admin/auth.py). Views: app/admin/views.py."""

from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import async_sessionmaker
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette_admin.contrib.sqlmodel import Admin

from app.admin.auth import SuperuserLogin
from app.admin.views import UserView, resource_view
from app.core.config import Settings
from app.crud.resource import registry
from app.models.user import User

PATH = "/admin"
TEMPLATES = Path(__file__).with_name("templates")
SESSION_COOKIE = "admin_session"
# Its own scripts and styles only (the templates have inline ones); no other origin at all.
POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'self'"
)


class ContentSecurityPolicy:
    """The admin's own Content-Security-Policy (the API's pages have theirs)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", ()),
                    (b"content-security-policy", POLICY.encode()),
                    (b"cache-control", b"no-store"),  # pages of data, behind a login
                ]
            await send(message)

        await self.app(scope, receive, with_policy)


def install_admin(app: FastAPI, sessionmaker: async_sessionmaker[Any], settings: Settings) -> None:
    """Mount the admin on `app`; its sessions come from the app's one pool."""
    session = Middleware(
        SessionMiddleware,
        secret_key=settings.SECRET_KEY,
        session_cookie=SESSION_COOKIE,
        max_age=int(timedelta(hours=settings.ADMIN_SESSION_HOURS).total_seconds()),
        path=PATH,
        same_site="lax",
        https_only=settings.ENVIRONMENT == "production",
    )
    admin = Admin(
        sessionmaker,
        title="CRUD backend admin",
        base_url=PATH,
        auth_provider=SuperuserLogin(),
        secret_key=settings.SECRET_KEY,
        templates_dir=str(TEMPLATES),
        middlewares=[Middleware(ContentSecurityPolicy), session],
    )
    admin.add_view(UserView(User, key="users", menu_label="Users"))
    for resource in registry:
        admin.add_view(resource_view(resource))
    admin.mount_to(app)
    admin.app.state.settings = settings  # what `request.app` is inside the admin
