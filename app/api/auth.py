from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from app.api.deps import SettingsDep
from app.core.client import client_address
from app.core.config import Settings
from app.core.db import SessionDep, utcnow
from app.core.errors import Forbidden, NotAuthenticated, problem_responses
from app.core.security import (
    create_access_token,
    new_refresh_token,
    refresh_token_digest,
    refresh_token_expiry,
    verify_password,
)
from app.models.login_throttle import (
    claim_attempt,
    forgive_attempt,
    reset_login_failures,
    throttle_keys,
)
from app.models.user import (
    RefreshRequest,
    RefreshToken,
    TokenPair,
    User,
    UserCreate,
    UserPublic,
    create_user,
    get_user_by_email,
)

router = APIRouter(prefix="/auth", tags=["auth"])

INVALID_REFRESH = "The refresh token is invalid, expired or already used"


async def issue_tokens(session: AsyncSession, user: User, settings: Settings) -> TokenPair:
    """A new access token and a stored refresh token (committed by the caller)."""
    assert user.id is not None
    expires = timedelta(minutes=settings.ACCESS_TOKEN_EXPIRE_MINUTES)
    refresh = new_refresh_token()
    session.add(
        RefreshToken(
            user_id=user.id,
            token_digest=refresh_token_digest(refresh),
            expires_at=refresh_token_expiry(settings.REFRESH_TOKEN_EXPIRE_DAYS),
        )
    )
    return TokenPair(
        access_token=create_access_token(user.id, settings.SECRET_KEY, expires),
        refresh_token=refresh,
        expires_in=int(expires.total_seconds()),
    )


async def revoke_refresh_token(session: AsyncSession, token: str) -> int | None:
    """Revoke a live refresh token atomically; its user id, or None if it was not live."""
    now = utcnow()
    result = await session.exec(
        update(RefreshToken)
        .where(
            col(RefreshToken.token_digest) == refresh_token_digest(token),
            col(RefreshToken.revoked_at).is_(None),
            col(RefreshToken.expires_at) > now,
        )
        .values(revoked_at=now)
        .returning(RefreshToken.user_id)
    )
    return result.scalar_one_or_none()


async def revoke_all_refresh_tokens(session: AsyncSession, user_id: int) -> None:
    await session.exec(
        update(RefreshToken)
        .where(col(RefreshToken.user_id) == user_id, col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )


@router.post(
    "/register",
    operation_id="auth-register",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409, 422),
)
async def register(
    data: UserCreate,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
    response: Response,
) -> UserPublic:
    user = await create_user(session, data, rounds=settings.BCRYPT_ROUNDS)
    await session.commit()
    response.headers["Location"] = str(request.url_for("read_user", user_id=user.id))
    return UserPublic.model_validate(user)


@router.post("/login", operation_id="auth-login", responses=problem_responses(401, 403, 422, 429))
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
) -> TokenPair:
    keys = throttle_keys(client_address(request, settings.PROXY_HOPS), form.username)
    attempt = await claim_attempt(
        session, keys, settings.LOGIN_MAX_FAILURES, settings.LOGIN_WINDOW_SECONDS
    )
    user = await get_user_by_email(session, form.username)
    hashed = user.hashed_password if user is not None else None
    matches = await verify_password(form.password, hashed, rounds=settings.BCRYPT_ROUNDS)
    if not matches or user is None:
        # The claimed attempt stays recorded as the failure.
        raise NotAuthenticated("Incorrect email or password", slug="invalid-credentials")
    await forgive_attempt(session, attempt)
    if not user.is_active:
        await session.commit()
        raise Forbidden("This account is inactive", slug="inactive-user")
    await reset_login_failures(session, keys[1])
    tokens = await issue_tokens(session, user, settings)
    await session.commit()
    return tokens


@router.post("/refresh", operation_id="auth-refresh", responses=problem_responses(401, 422))
async def refresh(body: RefreshRequest, session: SessionDep, settings: SettingsDep) -> TokenPair:
    user_id = await revoke_refresh_token(session, body.refresh_token)
    user = await session.get(User, user_id) if user_id is not None else None
    if user is None or not user.is_active:
        await session.commit()
        raise NotAuthenticated(INVALID_REFRESH, slug="invalid-token")
    tokens = await issue_tokens(session, user, settings)
    await session.commit()
    return tokens


@router.post(
    "/logout",
    operation_id="auth-logout",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(401, 422),
)
async def logout(body: RefreshRequest, session: SessionDep) -> None:
    if await revoke_refresh_token(session, body.refresh_token) is None:
        raise NotAuthenticated(INVALID_REFRESH, slug="invalid-token")
    await session.commit()
