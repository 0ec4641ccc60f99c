"""Mounts every resource declared in app/models."""

from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import bindparam, select
from sqlmodel import col
from starlette.requests import HTTPConnection

import app.models  # noqa: F401  (declares the resources)
from app.api.deps import TOKEN_URL, invalid_token, oauth2_scheme, token_claims
from app.core.errors import NotAuthenticated
from app.crud.resource import Viewer, ViewerDeps, registry
from app.crud.router import ResourceRoutes
from app.models.user import User

ANONYMOUS = Viewer(id=None)
# Built once: its bind parameters take each request's token claims. A token whose version is
# not the user's (password changed, logged out everywhere) finds no caller.
CALLER = select(col(User.is_superuser)).where(
    col(User.id) == bindparam("user_id"),
    col(User.is_active),
    col(User.token_version) == bindparam("token_version"),
)


class CallerScheme(OAuth2PasswordBearer):
    """The bearer-token scheme, resolving the caller as the generic layer sees it.

    One dependency instead of a caller dependency on a token dependency (FastAPI's
    resolution costs per node, on every request), documented as the same security scheme.
    The caller is one autocommit query, with no ORM session.
    """

    def __init__(self, *, required: bool) -> None:
        super().__init__(
            tokenUrl=TOKEN_URL, scheme_name=oauth2_scheme.scheme_name, auto_error=False
        )
        self.required = required

    async def __call__(self, request: HTTPConnection) -> Viewer:  # type: ignore[override]  # returns the caller, not the token
        token = await super().__call__(request)
        if token is None:
            if self.required:
                raise NotAuthenticated()
            return ANONYMOUS
        claims = token_claims(request, token, request.app.state.settings)
        params = {"user_id": claims.user_id, "token_version": claims.version}
        async with request.app.state.db.connect() as connection:
            caller = await connection.row(CALLER, params)
        if caller is None:
            raise invalid_token()
        return Viewer(id=claims.user_id, is_superuser=caller["is_superuser"])


VIEWERS = ViewerDeps(optional=CallerScheme(required=False), required=CallerScheme(required=True))


def generated_routes() -> list[ResourceRoutes]:
    """The routes of every registered resource (build() gives their `/api/v1` routers)."""
    return [ResourceRoutes(resource, VIEWERS) for resource in registry]
