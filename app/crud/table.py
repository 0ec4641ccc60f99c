"""Columns every managed table carries."""

from datetime import datetime
from typing import Any

from pydantic import ConfigDict
from sqlmodel import Field, SQLModel

from app.core.db import UTCDateTime, utcnow


class Timestamps(SQLModel):
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class Versioned(Timestamps):
    """Timestamps plus a version incremented on every write (the ETag is built on it)."""

    version: int = Field(default=1, nullable=False)


def input_config() -> Any:
    """The `model_config` of a Create or Update schema: unknown fields are a 422.

    Typed `Any` because SQLModel annotates `model_config` with its own, unexported subclass
    of pydantic's `ConfigDict`.
    """
    return ConfigDict(extra="forbid")
