import asyncio
from logging.config import fileConfig
from typing import Any, Literal

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from sqlmodel import SQLModel

import app.models  # noqa: F401  (registers every table on SQLModel.metadata)
from alembic import context
from app.core.config import get_settings
from app.core.db import UTCDateTime
from app.crud.sync.migration import add_sync_triggers

# Held by the migrations' transaction so that two hosts starting at once do not race.
MIGRATION_LOCK_ID = 7_212_023

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = SQLModel.metadata


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Migrations name plain SQLAlchemy types, not the app's decorators."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        render_item=render_item,
        process_revision_directives=add_sync_triggers,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Held until the migrations' one transaction ends, so it works through PgBouncer
            # too (an `autocommit_block()` in a migration would end it early). No statement
            # timeout for the migrations, whatever the role's (docs/scaling.md).
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
            connection.execute(text("SET LOCAL statement_timeout = 0"))
        context.run_migrations()


def migration_engine() -> AsyncEngine:
    """On the server itself when DATABASE_DIRECT_URL is set; else through DATABASE_URL, which
    may be a transaction-mode PgBouncer (no prepared statements then)."""
    settings = get_settings()
    if settings.DATABASE_DIRECT_URL:
        return create_async_engine(settings.DATABASE_DIRECT_URL, poolclass=NullPool)
    pooled = {"prepare_threshold": None} if settings.DB_PGBOUNCER and not settings.is_sqlite else {}
    return create_async_engine(settings.DATABASE_URL, poolclass=NullPool, connect_args=pooled)


async def run_async_migrations() -> None:
    engine = migration_engine()
    async with engine.connect() as connection:
        await connection.run_sync(run_migrations)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=get_settings().DATABASE_URL, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(run_async_migrations())
