"""Accounts: users, their tokens and the login throttle, over ORM sessions.

The API's auth and users routes and the scripts call these; they commit where a docstring
says so and otherwise leave the commit to the caller.
"""

from datetime import datetime, timedelta
from math import ceil

from sqlalchemy import delete, func, insert, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import Settings
from app.core.db import utcnow
from app.core.errors import Conflict, ProblemError, field_error
from app.core.locks import advisory_lock_key
from app.core.security import (
    create_access_token,
    hash_password,
    new_refresh_token,
    refresh_token_digest,
    refresh_token_expiry,
)
from app.models.login_throttle import LoginFailure
from app.models.user import RefreshToken, TokenPair, User, UserCreate

# -- users ------------------------------------------------------------------------------------


async def get_user_by_email(session: AsyncSession, email: str) -> User | None:
    result = await session.exec(select(User).where(User.email == email.lower()))
    return result.first()


async def create_user(
    session: AsyncSession, data: UserCreate, *, rounds: int, is_superuser: bool = False
) -> User:
    """Add a user (flushed, not committed); a taken email is a 409."""
    if await get_user_by_email(session, data.email) is not None:
        raise EmailTaken()
    hashed = await hash_password(data.password, rounds)
    user = User.model_validate(
        data, update={"hashed_password": hashed, "is_superuser": is_superuser}
    )
    session.add(user)
    await session.flush()
    return user


class EmailTaken(Conflict):
    slug = "email-taken"

    def __init__(self) -> None:
        super().__init__(
            "A user with this email already exists",
            errors=[field_error("email", "already registered", "email-taken")],
        )


# -- tokens -----------------------------------------------------------------------------------

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
        .returning(col(RefreshToken.user_id))
    )
    return result.scalar_one_or_none()


async def revoke_all_refresh_tokens(session: AsyncSession, user_id: int) -> None:
    await session.exec(
        update(RefreshToken)
        .where(col(RefreshToken.user_id) == user_id, col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )


# -- the login throttle -----------------------------------------------------------------------


class TooManyAttempts(ProblemError):
    status, slug = 429, "too-many-login-attempts"


def throttle_keys(address: str, email: str) -> list[str]:
    return [f"ip:{address}", f"account:{email.lower()[:300]}"]


async def claim_attempt(
    session: AsyncSession, keys: list[str], max_failures: int, window: int
) -> list[int]:
    """Count this attempt as a failure before the password is checked; 429 past the limit.

    The rows commit before they are counted, in key order (a per-key lock on PostgreSQL; SQLite
    has one writer), so parallel attempts see each other: of a burst, only the first
    `max_failures` get a password check. Returns the rows for `forgive_attempt`.
    """
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        for key in sorted(keys):
            await session.exec(
                select(func.pg_advisory_xact_lock(advisory_lock_key(f"login:{key}")))
            )
    now = utcnow()
    rows = [{"key": key, "failed_at": now} for key in keys]
    inserted = await session.exec(insert(LoginFailure).values(rows).returning(col(LoginFailure.id)))
    attempt = list(inserted.scalars())
    await session.commit()
    earlier = (
        select(LoginFailure.key, LoginFailure.failed_at)
        .where(
            col(LoginFailure.key).in_(keys),
            col(LoginFailure.failed_at) > now - timedelta(seconds=window),
            col(LoginFailure.id) < min(attempt),
        )
        .order_by(col(LoginFailure.failed_at).desc())
    )
    recent: dict[str, list[datetime]] = {}
    for key, failed_at in (await session.exec(earlier)).all():
        recent.setdefault(key, []).append(failed_at)
    unlocks = [
        times[max_failures - 1] + timedelta(seconds=window)
        for times in recent.values()
        if len(times) >= max_failures
    ]
    if unlocks:
        await forgive_attempt(session, attempt)
        await session.commit()
        wait = max(1, ceil((max(unlocks) - now).total_seconds()))
        raise TooManyAttempts(
            "Too many failed logins; try again later", headers={"Retry-After": str(wait)}
        )
    return attempt


async def forgive_attempt(session: AsyncSession, attempt: list[int]) -> None:
    """The attempt was refused before a check, or its password was right: not a failure."""
    await session.exec(delete(LoginFailure).where(col(LoginFailure.id).in_(attempt)))


async def reset_login_failures(session: AsyncSession, key: str) -> None:
    await session.exec(delete(LoginFailure).where(col(LoginFailure.key) == key))
