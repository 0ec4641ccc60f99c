"""Attempt counters in the database: failed password checks and sign-ups, per key.

One mechanism for every limit that guards bcrypt. An attempt is a row under each of its keys,
written and committed before the work it guards, then counted within a sliding window; past
the limit it is refused with 429 and `Retry-After`. The rows live in a table, not in process
memory, so a limit holds across workers and instances (scripts/purge.py deletes old ones).

| key | counts | limit |
|---|---|---|
| `ip:<address>` | failed logins and password checks from a client address | LOGIN_* |
| `account:<email>` | failed logins of an account, from clients it does not know | LOGIN_* |
| `device:<id>` | failed logins from one known device (app/services/devices.py) | LOGIN_* |
| `password:<user id>` | failed current-password checks of a signed-in account | LOGIN_* |
| `register-ip:<address>` | sign-ups from a client address, successful or not | REGISTER_* |
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from math import ceil

from sqlalchemy import delete, func, insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import Settings
from app.core.db import utcnow
from app.core.errors import ProblemError
from app.core.locks import advisory_lock_key
from app.models.login_throttle import LoginFailure

ADDRESS_KEY = "ip:"


class TooManyAttempts(ProblemError, status=429, slug="too-many-requests"):
    """Past a limit of attempts in its window; `Retry-After` says when the oldest ages out."""


@dataclass(frozen=True)
class Limit:
    """At most `attempts` counted attempts per key within `window` seconds."""

    attempts: int
    window: int
    detail: str
    slug: str = "too-many-requests"


def login_limit(settings: Settings) -> Limit:
    return Limit(
        settings.LOGIN_MAX_FAILURES,
        settings.LOGIN_WINDOW_SECONDS,
        "Too many failed logins; try again later",
        "too-many-login-attempts",
    )


def password_limit(settings: Settings) -> Limit:
    return Limit(
        settings.LOGIN_MAX_FAILURES,
        settings.LOGIN_WINDOW_SECONDS,
        "Too many wrong passwords; try again later",
    )


def register_limit(settings: Settings) -> Limit:
    return Limit(
        settings.REGISTER_MAX_PER_WINDOW,
        settings.REGISTER_WINDOW_SECONDS,
        "Too many sign-ups from this address; try again later",
    )


def longest_window(settings: Settings) -> timedelta:
    """How long a row can still count: scripts/purge.py keeps rows this long."""
    return timedelta(seconds=max(settings.LOGIN_WINDOW_SECONDS, settings.REGISTER_WINDOW_SECONDS))


def login_keys(address: str, email: str, device: str | None) -> list[str]:
    """Per address always; per account, unless the client proved it is a known device of it.

    A known device is counted on its own, so its failures never lock the account for the
    owner's other devices, and an attacker's failures (from unknown clients) never lock it.
    """
    second = f"device:{device}" if device else f"account:{email.lower()[:300]}"
    return [ADDRESS_KEY + address, second]


def password_keys(address: str, user_id: int) -> list[str]:
    return [ADDRESS_KEY + address, f"password:{user_id}"]


def register_keys(address: str) -> list[str]:
    return [f"register-ip:{address}"]


async def claim_attempt(session: AsyncSession, keys: list[str], limit: Limit) -> list[int]:
    """Count this attempt before the work it guards is done; 429 past the limit.

    The rows commit before they are counted, in key order (a per-key lock on PostgreSQL; SQLite
    has one writer), so parallel attempts see each other: of a burst, only the first
    `limit.attempts` get through. Returns the rows for `forgive_attempt`.
    """
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        for key in sorted(keys):
            await session.exec(
                select(func.pg_advisory_xact_lock(advisory_lock_key(f"throttle:{key}")))
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
            col(LoginFailure.failed_at) > now - timedelta(seconds=limit.window),
            col(LoginFailure.id) < min(attempt),
        )
        .order_by(col(LoginFailure.failed_at).desc())
    )
    recent: dict[str, list[datetime]] = {}
    for key, failed_at in (await session.exec(earlier)).all():
        recent.setdefault(key, []).append(failed_at)
    unlocks = [
        times[limit.attempts - 1] + timedelta(seconds=limit.window)
        for times in recent.values()
        if len(times) >= limit.attempts
    ]
    if unlocks:
        await forgive_attempt(session, attempt)
        await session.commit()
        wait = max(1, ceil((max(unlocks) - now).total_seconds()))
        raise TooManyAttempts(limit.detail, slug=limit.slug, headers={"Retry-After": str(wait)})
    return attempt


async def forgive_attempt(session: AsyncSession, attempt: list[int]) -> None:
    """The attempt was refused before a check, or its password was right: not a failure."""
    await session.exec(delete(LoginFailure).where(col(LoginFailure.id).in_(attempt)))


async def reset_failures(session: AsyncSession, keys: list[str]) -> None:
    """After a right password: the account's (or device's) counter starts again.

    Never the address's: an attacker with an account of their own would launder its failures.
    """
    kept = [key for key in keys if not key.startswith(ADDRESS_KEY)]
    await session.exec(delete(LoginFailure).where(col(LoginFailure.key).in_(kept)))
