"""Failed logins counted per client address and per account, in the database.

Kept in a table (not in process memory) so the limit holds across workers and instances.
"""

import hashlib
from datetime import datetime, timedelta
from math import ceil

from sqlalchemy import delete, func, insert, select
from sqlmodel import Field, Index, SQLModel, col
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.db import UTCDateTime, utcnow
from app.core.errors import ProblemError


class LoginFailure(SQLModel, table=True):
    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_key_failed_at", "key", "failed_at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=320)  # "ip:<address>" or "account:<email>"
    failed_at: datetime = Field(sa_type=UTCDateTime)


class TooManyAttempts(ProblemError):
    status, slug = 429, "too-many-login-attempts"


def throttle_keys(address: str, email: str) -> list[str]:
    return [f"ip:{address}", f"account:{email.lower()[:300]}"]


def _lock_id(key: str) -> int:
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


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
            await session.exec(select(func.pg_advisory_xact_lock(_lock_id(key))))
    now = utcnow()
    rows = [{"key": key, "failed_at": now} for key in keys]
    inserted = await session.exec(insert(LoginFailure).values(rows).returning(LoginFailure.id))
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
