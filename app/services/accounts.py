"""Accounts: users and their tokens, over ORM sessions (the throttle: throttle.py).

The API's auth and users routes and the scripts call these; they commit where a docstring
says so and otherwise leave the commit to the caller.
"""

from datetime import datetime, timedelta

from sqlalchemy import Update, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import Settings
from app.core.db import utcnow
from app.core.errors import Conflict, NotAuthenticated, field_error
from app.core.locks import advisory_lock_key
from app.core.security import (
    create_access_token,
    hash_password,
    new_refresh_token,
    new_token_family,
    refresh_token_digest,
    refresh_token_expiry,
)
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


class EmailTaken(Conflict, slug="email-taken"):
    def __init__(self) -> None:
        super().__init__(
            "A user with this email already exists",
            errors=[field_error("email", "already registered", "email-taken")],
        )


class LastSuperuser(Conflict, slug="last-superuser"):
    """Deleting, demoting or deactivating the last active superuser."""


async def lock_superusers(session: AsyncSession) -> None:
    """Before a change that may leave no active superuser: one such change at a time.

    A lock until the commit on PostgreSQL; SQLite's one writer serialises the changes.
    """
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        await session.exec(select(func.pg_advisory_xact_lock(advisory_lock_key("superusers"))))


async def keep_a_superuser(session: AsyncSession) -> None:
    """After that change (flushed): 409 if no active superuser is left; the caller rolls back."""
    active = (
        select(func.count()).select_from(User).where(col(User.is_superuser), col(User.is_active))
    )
    if (await session.exec(active)).one() == 0:
        raise LastSuperuser(
            "This is the last active superuser: make another one first, so that someone "
            "can still administer the users"
        )


# -- tokens -----------------------------------------------------------------------------------
#
# A login starts a family of refresh tokens that ends REFRESH_TOKEN_MAX_DAYS later. A refresh
# revokes the token presented and issues the next of its family. A revoked token presented
# again means two parties hold the family (RFC 6819 5.2.2.3): the family is revoked. But two
# refreshes of one token sent at once by its owner (two tabs, a retry) look alike: one wins
# the row, the other finds it revoked a moment ago. So a token rotated less than REUSE_GRACE
# ago answers 401 and leaves its family alone (SECURITY.md has the trade-off).

INVALID_REFRESH = "The refresh token is invalid, expired or already used"
REUSE_GRACE = timedelta(seconds=5)


def invalid_refresh_token() -> NotAuthenticated:
    return NotAuthenticated(INVALID_REFRESH, slug="invalid-token")


def issue_tokens(
    session: AsyncSession, user: User, settings: Settings, family: tuple[str, datetime] | None
) -> TokenPair:
    """An access token and a stored refresh token (committed by the caller).

    `family` is (id, end) on a refresh; None on a login, which starts a family.
    """
    assert user.id is not None
    name, ends = family or (
        new_token_family(),
        utcnow() + timedelta(days=settings.REFRESH_TOKEN_MAX_DAYS),
    )
    expires = timedelta(minutes=settings.ACCESS_TOKEN_EXPIRE_MINUTES)
    refresh = new_refresh_token()
    session.add(
        RefreshToken(
            user_id=user.id,
            token_digest=refresh_token_digest(refresh),
            expires_at=refresh_token_expiry(settings.REFRESH_TOKEN_EXPIRE_DAYS, ends),
            family=name,
            family_expires_at=ends,
            token_version=user.token_version,
        )
    )
    access = create_access_token(user.id, settings.SECRET_KEY, expires, version=user.token_version)
    return TokenPair(
        access_token=access, refresh_token=refresh, expires_in=int(expires.total_seconds())
    )


def _revoke_live(digest: str, now: datetime) -> Update:
    """Revoke the token if it is live. Of concurrent callers one wins: a row lock on
    PostgreSQL (the others then see it revoked), the one writer on SQLite."""
    return (
        update(RefreshToken)
        .where(
            col(RefreshToken.token_digest) == digest,
            col(RefreshToken.revoked_at).is_(None),
            col(RefreshToken.expires_at) > now,
            col(RefreshToken.family_expires_at) > now,
        )
        .values(revoked_at=now)
    )


async def rotate_refresh_token(session: AsyncSession, token: str, settings: Settings) -> TokenPair:
    """Revoke a live refresh token and issue the next of its family (committed); else 401."""
    now = utcnow()
    digest = refresh_token_digest(token)
    statement = _revoke_live(digest, now).returning(
        col(RefreshToken.user_id),
        col(RefreshToken.family),
        col(RefreshToken.family_expires_at),
        col(RefreshToken.token_version),
    )
    row = (await session.exec(statement)).one_or_none()
    if row is None:
        found = select(RefreshToken.family, RefreshToken.revoked_at).where(
            col(RefreshToken.token_digest) == digest
        )
        reused = (await session.exec(found)).first()
        # Unknown, expired unused, or rotated within the grace: nobody else holds the family.
        if reused is not None and reused[1] is not None and reused[1] <= now - REUSE_GRACE:
            await revoke_family(session, reused[0], now)
        await session.commit()
        raise invalid_refresh_token()
    user_id, family, ends, version = row
    user = await session.get(User, user_id)
    # A version bumped since the login (password change, logout-all) ends the family, even
    # when this refresh began before the bump revoked it.
    if user is None or not user.is_active or user.token_version != version:
        await session.commit()
        raise invalid_refresh_token()
    tokens = issue_tokens(session, user, settings, (family, ends))
    await session.commit()
    return tokens


async def revoke_family(session: AsyncSession, family: str, now: datetime) -> None:
    await session.exec(
        update(RefreshToken)
        .where(col(RefreshToken.family) == family, col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=now)
    )


async def end_family(session: AsyncSession, token: str) -> bool:
    """Logout: revoke the family of `token` (committed by the caller); whether it was live.

    A revoked token ends its family too. Revoking the token's own row first waits for a
    refresh that holds it, so the family's revocation then sees that refresh's new token.
    """
    now = utcnow()
    digest = refresh_token_digest(token)
    revoked = await session.exec(_revoke_live(digest, now).returning(col(RefreshToken.family)))
    family = revoked.scalar_one_or_none()
    if family is None:
        found = select(RefreshToken.family).where(
            col(RefreshToken.token_digest) == digest, col(RefreshToken.family_expires_at) > now
        )
        if (known := (await session.exec(found)).first()) is not None:
            await revoke_family(session, known, now)
        return False
    await revoke_family(session, family, now)
    return True


async def end_all_sessions(session: AsyncSession, user: User) -> None:
    """Every access and refresh token of `user` stops working (committed by the caller)."""
    await session.exec(
        update(RefreshToken)
        .where(col(RefreshToken.user_id) == user.id, col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )
    user.token_version += 1
    session.add(user)
