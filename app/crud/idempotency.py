"""`Idempotency-Key` on creates: a retried POST returns the first result, never a second row.

The key's record is written in the same transaction as the row it created; on PostgreSQL a
transaction-scoped advisory lock turns a retry that overlaps the first attempt into a 409.
Keys belong to the caller's id (the generic layer knows no user table) and last 24 hours.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic_core import to_json
from sqlalchemy import UniqueConstraint, bindparam, delete, func, insert, select
from sqlmodel import Field, SQLModel, Text, col

from app.core.connections import Connection
from app.core.db import UTCDateTime, utcnow
from app.core.errors import Conflict, Unprocessable
from app.core.locks import advisory_lock_key

TTL = timedelta(hours=24)
CREATED = 201


class IdempotencyKey(SQLModel, table=True):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int  # the caller's id
    key: str = Field(max_length=255)
    request_hash: str = Field(max_length=64)
    status_code: int
    headers: str = Field(sa_type=Text)  # {"ETag": ...}
    body: str = Field(sa_type=Text)  # the created item's JSON
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


@dataclass(frozen=True)
class Key:
    """One caller's key for one request (its path and body, hashed)."""

    caller_id: int
    key: str
    request_hash: str


def request_key(caller_id: int, key: str, path: str, payload: Any) -> Key:
    canonical = json.dumps([path, payload], sort_keys=True, separators=(",", ":"), default=str)
    return Key(caller_id, key, hashlib.sha256(canonical.encode()).hexdigest())


_OURS = (col(IdempotencyKey.user_id) == bindparam("caller_id")) & (
    col(IdempotencyKey.key) == bindparam("key")
)
_LOCK = select(func.pg_try_advisory_xact_lock(bindparam("lock")))
_STORED = select(
    col(IdempotencyKey.request_hash), col(IdempotencyKey.headers), col(IdempotencyKey.body)
).where(_OURS, col(IdempotencyKey.created_at) > bindparam("since", type_=UTCDateTime))
_EXPIRED = delete(IdempotencyKey).where(
    _OURS, col(IdempotencyKey.created_at) <= bindparam("since", type_=UTCDateTime)
)
_REMEMBER = insert(IdempotencyKey).values(
    user_id=bindparam("caller_id"),
    key=bindparam("key"),
    request_hash=bindparam("request_hash"),
    status_code=CREATED,
    headers=bindparam("headers"),
    body=bindparam("body"),
    created_at=bindparam("now", type_=UTCDateTime),
)


async def stored(connection: Connection, key: Key) -> tuple[dict[str, Any], str] | None:
    """The first result (item, ETag) to return again, or None to go ahead, holding the
    key's lock until the transaction ends."""
    if connection.dialect_name == "postgresql":
        lock = advisory_lock_key(f"idempotency:{key.caller_id}:{key.key}")
        if not await connection.scalar(_LOCK, {"lock": lock}):
            raise Conflict(
                "A request with this Idempotency-Key is still in progress",
                slug="idempotency-in-progress",
            )
    values = {"caller_id": key.caller_id, "key": key.key, "since": utcnow() - TTL}
    # A write first: on SQLite it takes the database's write lock, so an overlapping retry
    # waits here for the first attempt's commit and then replays it.
    await connection.execute(_EXPIRED, values)
    row = await connection.row(_STORED, values)
    if row is None:
        return None
    if row["request_hash"] != key.request_hash:
        raise Unprocessable(
            "This Idempotency-Key was used with a different request",
            slug="idempotency-key-reused",
            errors=[{"loc": ["header", "Idempotency-Key"], "msg": "reused", "type": "reused"}],
        )
    return json.loads(row["body"]), json.loads(row["headers"])["ETag"]


async def remember(connection: Connection, key: Key, item: dict[str, Any], etag: str) -> None:
    """Store the result under the key, in the caller's transaction."""
    await connection.execute(
        _REMEMBER,
        {
            "caller_id": key.caller_id,
            "key": key.key,
            "request_hash": key.request_hash,
            "headers": json.dumps({"ETag": etag}),
            "body": to_json(item).decode(),
            "now": utcnow(),
        },
    )
