from typing import Annotated, Any

from fastapi import Depends, Request, Response, status
from fastapi.security import OAuth2PasswordBearer
from starlette.requests import HTTPConnection

from app.core.config import Settings
from app.core.db import SessionDep
from app.core.errors import Forbidden, NotAuthenticated
from app.core.security import AccessClaims, decode_access_token
from app.models.user import User


async def get_app_settings(request: Request) -> Settings:
    """The settings the app was built with (`create_app(settings)`), not the process's.

    `async` on purpose: FastAPI runs a plain `def` dependency in the threadpool.
    """
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def operation(operation_id: str, summary: str) -> dict[str, Any]:
    """The names of a hand-written operation: its stable id and its `/docs` summary."""
    return {"operation_id": operation_id, "summary": summary}


# Route arguments of an operation that answers 204 without a body.
NO_CONTENT: dict[str, Any] = {"status_code": status.HTTP_204_NO_CONTENT, "response_class": Response}

TOKEN_URL = "/api/v1/auth/login"
oauth2_scheme = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)
TokenDep = Annotated[str | None, Depends(oauth2_scheme)]


def invalid_token() -> NotAuthenticated:
    return NotAuthenticated("The access token is invalid or expired", slug="invalid-token")


def token_claims(request: HTTPConnection, token: str, settings: Settings) -> AccessClaims:
    """What a valid access token says (401 otherwise); its user id is logged with the request.

    The caller's row must then match it: active, and the same `token_version` (a password
    change, logout-all or deletion ends the token at once). Both lookups check that in the
    query that loads the caller.
    """
    claims = decode_access_token(token, settings.SECRET_KEY)
    if claims is None:
        raise invalid_token()
    request.state.user_id = claims.user_id
    return claims


async def get_optional_user(
    request: Request, session: SessionDep, settings: SettingsDep, token: TokenDep
) -> User | None:
    """The caller, or None when no token is sent; an invalid token is always 401."""
    if token is None:
        return None
    claims = token_claims(request, token, settings)
    user = await session.get(User, claims.user_id)
    if user is None or not user.is_active or user.token_version != claims.version:
        raise invalid_token()
    return user


OptionalUser = Annotated[User | None, Depends(get_optional_user)]


async def get_current_user(user: OptionalUser) -> User:
    if user is None:
        raise NotAuthenticated()
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_superuser(user: CurrentUser) -> User:
    if not user.is_superuser:
        raise Forbidden("This operation needs a superuser")
    return user


SuperUser = Annotated[User, Depends(get_superuser)]
