"""`Idempotency-Key` on creates: a retried POST returns the stored response, never a second row.

The key's record is written in the same transaction as the row it created; on PostgreSQL a
transaction-scoped advisory lock turns a retry that overlaps the first attempt into a 409.
"""

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from fastapi import Response
from sqlalchemy import UniqueConstraint, delete, func, insert, select
from sqlmodel import Field, SQLModel, Text, col

from app.core.db import UTCDateTime, utcnow
from app.core.errors import Conflict, Unprocessable
from app.core.sql import Connection

TTL = timedelta(hours=24)
REPLAYED_HEADERS = ("Location", "ETag")


class IdempotencyKey(SQLModel, table=True):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE")
    key: str = Field(max_length=255)
    request_hash: str = Field(max_length=64)
    status_code: int
    headers: str = Field(sa_type=Text)
    body: str = Field(sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


def request_hash(path: str, payload: Any) -> str:
    canonical = json.dumps([path, payload], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _lock_id(user_id: int, key: str) -> int:
    digest = hashlib.blake2b(f"{user_id}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def stored_response(
    connection: Connection, user_id: int, key: str, fingerprint: str
) -> Response | None:
    """The response to replay for this key, or None to go ahead (holding the key's lock)."""
    if connection.dialect_name == "postgresql":
        locked = await connection.scalar(
            select(func.pg_try_advisory_xact_lock(_lock_id(user_id, key)))
        )
        if not locked:
            raise Conflict(
                "A request with this Idempotency-Key is still in progress",
                slug="idempotency-in-progress",
            )
    statement = select(IdempotencyKey).where(
        col(IdempotencyKey.user_id) == user_id,
        col(IdempotencyKey.key) == key,
        col(IdempotencyKey.created_at) > utcnow() - TTL,
    )
    row = await connection.row(statement)
    if row is None:
        return None
    if row["request_hash"] != fingerprint:
        raise Unprocessable(
            "This Idempotency-Key was used with a different request",
            slug="idempotency-key-reused",
            errors=[{"loc": ["header", "Idempotency-Key"], "msg": "reused", "type": "reused"}],
        )
    return Response(
        row["body"],
        status_code=row["status_code"],
        headers=json.loads(row["headers"]),
        media_type="application/json",
    )


async def remember(
    connection: Connection, user_id: int, key: str, fingerprint: str, response: Response
) -> None:
    """Store the response under the key, in the caller's transaction."""
    await connection.execute(
        delete(IdempotencyKey).where(
            col(IdempotencyKey.user_id) == user_id,
            col(IdempotencyKey.key) == key,
            col(IdempotencyKey.created_at) <= utcnow() - TTL,
        )
    )
    headers = {
        name: response.headers[name] for name in REPLAYED_HEADERS if name in response.headers
    }
    await connection.execute(
        insert(IdempotencyKey).values(
            user_id=user_id,
            key=key,
            request_hash=fingerprint,
            status_code=response.status_code,
            headers=json.dumps(headers),
            body=bytes(response.body).decode(),
            created_at=utcnow(),
        )
    )
