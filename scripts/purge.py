"""Delete what has expired: refresh tokens, idempotency keys, throttle counters, and sync
tombstones older than SYNC_RETENTION_DAYS (plus a day: a tombstone may be written a little
before the snapshot a token starts from; tokens themselves expire at the retention, 410).

A refresh token goes when its family (its login) has ended, or when it expired unused: a
revoked token stays until its family ends, so that presenting it again revokes the family.

Run it from a platform scheduler (e.g. hourly): `python -m scripts.purge`.
"""

import asyncio
from datetime import timedelta

from sqlalchemy import and_, delete, or_
from sqlmodel import col

from app.core.config import get_settings
from app.core.database import Database
from app.core.db import utcnow
from app.crud.idempotency import TTL as IDEMPOTENCY_TTL
from app.crud.idempotency import IdempotencyKey
from app.crud.sync.schema import SyncTombstone
from app.models.login_throttle import LoginFailure
from app.models.user import RefreshToken
from app.services.throttle import longest_window


async def purge() -> dict[str, int]:
    settings = get_settings()
    now = utcnow()
    statements = {
        "refresh_tokens": delete(RefreshToken).where(
            or_(
                col(RefreshToken.family_expires_at) <= now,
                and_(col(RefreshToken.revoked_at).is_(None), col(RefreshToken.expires_at) <= now),
            )
        ),
        "idempotency_keys": delete(IdempotencyKey).where(
            col(IdempotencyKey.created_at) <= now - IDEMPOTENCY_TTL
        ),
        "login_failures": delete(LoginFailure).where(
            col(LoginFailure.failed_at) <= now - longest_window(settings)
        ),
        "sync_tombstones": delete(SyncTombstone).where(
            col(SyncTombstone.deleted_at) <= now - timedelta(days=settings.SYNC_RETENTION_DAYS + 1)
        ),
    }
    async with Database(settings) as db, db.engine.begin() as connection:
        return {
            table: (await connection.execute(statement)).rowcount
            for table, statement in statements.items()
        }


if __name__ == "__main__":
    for table, count in asyncio.run(purge()).items():
        print(f"{table}: {count} expired rows deleted")
