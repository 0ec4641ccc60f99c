"""Columns every managed table carries."""

from datetime import datetime
from typing import Any

from pydantic import ConfigDict
from sqlalchemy import BigInteger
from sqlmodel import Field, SQLModel

from app.core.db import UTCDateTime, utcnow


class Timestamps(SQLModel):
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class Versioned(Timestamps):
    """Timestamps plus a version incremented on every write (the ETag is built on it), and
    the change stamp delta sync follows (set by triggers: app/crud/sync/schema.py)."""

    version: int = Field(default=1, nullable=False)
    sync_xid: int = Field(
        default=0, sa_type=BigInteger, nullable=False, sa_column_kwargs={"server_default": "0"}
    )


def input_config() -> Any:
    """The `model_config` of a Create or Update schema: unknown fields are a 422.

    Typed `Any` because SQLModel annotates `model_config` with its own, unexported subclass
    of pydantic's `ConfigDict`.
    """
    return ConfigDict(extra="forbid")
