"""Failed logins counted per client address and per account, in the database.

Kept in a table (not in process memory) so the limit holds across workers and instances.
"""

from datetime import datetime, timedelta
from math import ceil

from sqlalchemy import delete, insert, select
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


async def check_login_allowed(
    session: AsyncSession, keys: list[str], max_failures: int, window: int
) -> None:
    """429 with Retry-After while any key has `max_failures` failures in the sliding window."""
    now = utcnow()
    statement = (
        select(LoginFailure.key, LoginFailure.failed_at)
        .where(
            col(LoginFailure.key).in_(keys),
            col(LoginFailure.failed_at) > now - timedelta(seconds=window),
        )
        .order_by(col(LoginFailure.failed_at).desc())
    )
    recent: dict[str, list[datetime]] = {}
    for key, failed_at in (await session.exec(statement)).all():
        recent.setdefault(key, []).append(failed_at)
    unlocks = [
        times[max_failures - 1] + timedelta(seconds=window)
        for times in recent.values()
        if len(times) >= max_failures
    ]
    if unlocks:
        wait = max(1, ceil((max(unlocks) - now).total_seconds()))
        raise TooManyAttempts(
            "Too many failed logins; try again later", headers={"Retry-After": str(wait)}
        )


async def record_login_failure(session: AsyncSession, keys: list[str]) -> None:
    now = utcnow()
    await session.exec(insert(LoginFailure).values([{"key": k, "failed_at": now} for k in keys]))


async def reset_login_failures(session: AsyncSession, key: str) -> None:
    await session.exec(delete(LoginFailure).where(col(LoginFailure.key) == key))
