"""Mounts every resource declared in app/models."""

from typing import Annotated

from fastapi import Query, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import bindparam, select
from sqlmodel import col
from starlette.requests import HTTPConnection

import app.models  # noqa: F401  (declares the resources)
from app.api.deps import TOKEN_URL, invalid_token, oauth2_scheme, token_claims
from app.core.errors import NotAuthenticated
from app.core.security import STREAM_TICKET_TYPE, AccessClaims, decode_access_token
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
        return await caller(request, token_claims(request, token, request.app.state.settings))


async def caller(request: HTTPConnection, claims: AccessClaims) -> Viewer:
    """The user a token names, if it is still theirs (401 otherwise)."""
    params = {"user_id": claims.user_id, "token_version": claims.version}
    async with request.app.state.db.connect() as connection:
        row = await connection.row(CALLER, params)
    if row is None:
        raise invalid_token()
    return Viewer(id=claims.user_id, is_superuser=row["is_superuser"])


TICKET_HELP = (
    "A stream ticket (`POST /api/v1/auth/stream-ticket`): for browsers' EventSource, which "
    "cannot send the Authorization header"
)


async def ticket_caller(
    request: Request,
    ticket: Annotated[str | None, Query(max_length=2048, description=TICKET_HELP)] = None,
) -> Viewer | None:
    """The caller a stream ticket names; None without one."""
    if ticket is None:
        return None
    settings = request.app.state.settings
    claims = decode_access_token(ticket, settings.SECRET_KEY, STREAM_TICKET_TYPE)
    if claims is None:
        raise NotAuthenticated("The stream ticket is invalid or expired", slug="invalid-token")
    request.state.user_id = claims.user_id
    return await caller(request, claims)


VIEWERS = ViewerDeps(
    optional=CallerScheme(required=False),
    required=CallerScheme(required=True),
    ticket=ticket_caller,
)


def generated_routes() -> list[ResourceRoutes]:
    """The routes of every registered resource (build() gives their `/api/v1` routers)."""
    return [ResourceRoutes(resource, VIEWERS) for resource in registry]
