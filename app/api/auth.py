"""Sign up, log in (OAuth2 password form; `username` is the email), trade a refresh token for a new
pair, log out one login or all of them.
"""

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Cookie, Depends, Header, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from app.api.deps import NO_CONTENT, CurrentUser, SettingsDep, operation
from app.core.client import client_address
from app.core.db import SessionDep
from app.core.problem_docs import problem_responses
from app.core.security import STREAM_TICKET_TYPE, create_access_token
from app.models.user import (
    LoginTokens,
    RefreshRequest,
    StreamTicket,
    TokenPair,
    UserCreate,
    UserPublic,
)
from app.services.accounts import (
    create_user,
    end_all_sessions,
    end_family,
    invalid_refresh_token,
    issue_tokens,
    rotate_refresh_token,
)
from app.services.devices import issue_device_token
from app.services.logins import check_login
from app.services.throttle import (
    claim_attempt,
    register_keys,
    register_limit,
)

router = APIRouter(prefix="/auth", tags=["auth"])

DEVICE_COOKIE = "device_token"
DEVICE_HELP = "The `device_token` of an earlier login of this account: a known device"
DeviceHeader = Annotated[str | None, Header(alias="X-Device-Token", description=DEVICE_HELP)]
DeviceCookie = Annotated[str | None, Cookie(alias=DEVICE_COOKIE, description=DEVICE_HELP)]


@router.post(
    "/register",
    **operation("auth-register", "Register a user"),
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409, 422, 429),
)
async def register(
    data: UserCreate,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
    response: Response,
) -> UserPublic:
    """At most REGISTER_MAX_PER_WINDOW sign-ups per client address, taken emails included."""
    address = client_address(request, settings.PROXY_HOPS)
    await claim_attempt(session, register_keys(address), register_limit(settings))
    user = await create_user(session, data, rounds=settings.BCRYPT_ROUNDS)
    await session.commit()
    response.headers["Location"] = str(request.url_for("read_user", user_id=user.id))
    return UserPublic.model_validate(user)


@router.post(
    "/login",
    **operation("auth-login", "Log in: an access and refresh token pair"),
    responses=problem_responses(401, 403, 422, 429),
)
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    device_header: DeviceHeader = None,
    device_cookie: DeviceCookie = None,
) -> LoginTokens:
    """Failures are limited per client address, and per account for clients it does not know.

    A client that presents the `device_token` of an earlier login of this account (cookie or
    `X-Device-Token`) is a known device: others' failures do not hold it, its own count
    against the device. Each login returns a new one, also as an HttpOnly cookie.
    """
    address = client_address(request, settings.PROXY_HOPS)
    user = await check_login(
        session, settings, address, form.username, form.password, device_header, device_cookie
    )
    tokens = issue_tokens(session, user, settings, family=None)
    device_token = issue_device_token(user, settings)
    await session.commit()
    response.set_cookie(
        DEVICE_COOKIE,
        device_token,
        max_age=settings.DEVICE_TOKEN_EXPIRE_DAYS * 86_400,
        path=request.url.path.removesuffix("/login"),  # /api/v1/auth: logins only
        secure=settings.ENVIRONMENT == "production",
        httponly=True,
        samesite="lax",
    )
    return LoginTokens(**tokens.model_dump(), device_token=device_token)


@router.post(
    "/refresh",
    **operation("auth-refresh", "Refresh: trade a refresh token for a new pair"),
    responses=problem_responses(401, 422),
)
async def refresh(body: RefreshRequest, session: SessionDep, settings: SettingsDep) -> TokenPair:
    """The next token pair of the refresh token's family (its login); the token is spent.

    Presenting a spent token again revokes the whole family (theft detection), unless it was
    spent in the last few seconds (two refreshes at once: one wins, the other gets a 401).
    """
    return await rotate_refresh_token(session, body.refresh_token, settings)


@router.post(
    "/logout",
    **operation("auth-logout", "Log out one login (its refresh token family)"),
    **NO_CONTENT,
    responses=problem_responses(401, 422),
)
async def logout(body: RefreshRequest, session: SessionDep) -> None:
    """Ends the refresh token's family (its login); a spent token ends it too, but is a 401."""
    was_live = await end_family(session, body.refresh_token)
    await session.commit()
    if not was_live:
        raise invalid_refresh_token()


@router.post(
    "/logout-all",
    **operation("auth-logout-all", "Log out every login of the account"),
    **NO_CONTENT,
    responses=problem_responses(401),
)
async def logout_all(user: CurrentUser, session: SessionDep) -> None:
    """Ends every login of the caller's account: all refresh and access tokens, this one too."""
    await end_all_sessions(session, user)
    await session.commit()


@router.post(
    "/stream-ticket",
    **operation("auth-stream-ticket", "A ticket that opens event streams (EventSource)"),
    responses=problem_responses(401),
)
async def stream_ticket(user: CurrentUser, settings: SettingsDep) -> StreamTicket:
    """A token that opens `GET /<plural>/events?ticket=...` for STREAM_TICKET_SECONDS (60).

    Browsers' EventSource cannot send the Authorization header, and a URL ends up in logs and
    histories, where an access token should not. A ticket only opens streams, briefly; an
    open stream lives on. Logging out everywhere ends unused tickets too.
    """
    assert user.id is not None
    expires = timedelta(seconds=settings.STREAM_TICKET_SECONDS)
    ticket = create_access_token(
        user.id, settings.SECRET_KEY, expires, version=user.token_version, kind=STREAM_TICKET_TYPE
    )
    return StreamTicket(ticket=ticket, expires_in=settings.STREAM_TICKET_SECONDS)
