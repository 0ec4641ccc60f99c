"""Throttle counters: failed logins and password checks, sign-ups (app/services/throttle.py).

Kept in a table (not in process memory) so the limits hold across workers and instances.
"""

from datetime import datetime

from sqlmodel import Field, Index, SQLModel

from app.core.db import UTCDateTime


class LoginFailure(SQLModel, table=True):
    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_key_failed_at", "key", "failed_at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=320)  # "ip:<address>", "account:<email>", ... (throttle.py)
    failed_at: datetime = Field(sa_type=UTCDateTime)
