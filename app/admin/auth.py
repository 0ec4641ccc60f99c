"""Who may use the admin: active superusers, logged in with their email and password.

The login goes through the API's own check (app/services/logins.py), so failures count in
the same throttle. The session is a cookie signed with SECRET_KEY (HttpOnly, SameSite=Lax,
Secure in production) holding the user's id and token version: every request checks both
against the database, so a password change, logout-all or losing superuser ends it at once,
on every worker and instance.
"""

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette_admin.auth import AdminUser, AuthProvider
from starlette_admin.exceptions import LoginFailed

from app.core.client import client_address
from app.core.errors import ProblemError
from app.models.user import User
from app.services.logins import check_login

SESSION_USER, SESSION_VERSION = "user_id", "token_version"


class SuperuserLogin(AuthProvider):
    async def login(
        self, username: str, password: str, remember_me: bool, request: Request
    ) -> Response | None:
        settings = request.app.state.settings
        session: AsyncSession = request.state.session
        address = client_address(request, settings.PROXY_HOPS)
        try:
            user = await check_login(session, settings, address, username, password)
        except ProblemError as error:  # wrong password, inactive, or throttled (429)
            raise LoginFailed(error.detail) from None
        await session.commit()  # the throttle's reset
        if not user.is_superuser:
            raise LoginFailed("Only superusers may use the admin")
        request.session.clear()
        request.session.update({SESSION_USER: user.id, SESSION_VERSION: user.token_version})
        return None

    async def logout(self, request: Request) -> Response | None:
        request.session.clear()
        return None

    async def authenticate(self, request: Request) -> AdminUser | None:
        user_id = request.session.get(SESSION_USER)
        version = request.session.get(SESSION_VERSION)
        if not isinstance(user_id, int) or not isinstance(version, int):
            return None
        session: AsyncSession = request.state.session
        found = await session.exec(
            select(col(User.email), col(User.full_name)).where(
                col(User.id) == user_id,
                col(User.token_version) == version,
                col(User.is_active),
                col(User.is_superuser),
            )
        )
        row = found.first()
        if row is None:
            request.session.clear()
            return None
        request.state.user_id = user_id  # in the access log line
        email, full_name = row
        return AdminUser(username=full_name or email)
