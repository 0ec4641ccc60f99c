"""What delta sync stores: a change stamp on every row, tombstones, and the triggers that
keep both, whoever writes (the API, a cascade, a script, psql).

PostgreSQL: each insert or update stamps the row's `sync_xid` with the writing transaction's
id (`pg_current_xact_id()`); each delete leaves a tombstone with that id; each write
statement sends `NOTIFY sync, '<table>'` (delivered at commit) for the live feed. SQLite has
one writer at a time: the stamp is a counter (`sync_clock`) bumped by each change.
docs/sync.md explains why following these stamps never misses a change.
"""

from datetime import datetime

from sqlalchemy import BigInteger, Index, Table, event
from sqlalchemy.engine import Connection
from sqlmodel import Field, SQLModel

from app.core.db import UTCDateTime

SYNC_COLUMN = "sync_xid"
NOTIFY_CHANNEL = "sync"


class SyncTombstone(SQLModel, table=True):
    """A deleted row of a synced table, kept SYNC_RETENTION_DAYS (scripts/purge.py)."""

    __tablename__ = "sync_tombstones"
    __table_args__ = (Index("ix_sync_tombstones_resource_xid_row_id", "resource", "xid", "row_id"),)

    id: int | None = Field(default=None, primary_key=True)
    resource: str = Field(max_length=63)  # the table's name
    row_id: int = Field(sa_type=BigInteger)
    xid: int = Field(sa_type=BigInteger)  # the deleting transaction (SQLite: the clock)
    deleted_at: datetime = Field(sa_type=UTCDateTime, index=True)


class SyncClock(SQLModel, table=True):
    """SQLite's change counter: one row, bumped by every change of a synced table."""

    __tablename__ = "sync_clock"

    id: int = Field(default=1, primary_key=True)
    value: int = Field(default=0, sa_type=BigInteger)


# Created once (migration 0007), shared by every synced table's triggers.
POSTGRES_FUNCTIONS = [
    f"""
    CREATE OR REPLACE FUNCTION sync_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.{SYNC_COLUMN} := pg_current_xact_id()::text::bigint;
        RETURN NEW;
    END $$
    """,
    """
    CREATE OR REPLACE FUNCTION sync_tombstone() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO sync_tombstones (resource, row_id, xid, deleted_at)
        SELECT TG_TABLE_NAME, id, pg_current_xact_id()::text::bigint, now() FROM gone;
        RETURN NULL;
    END $$
    """,
    f"""
    CREATE OR REPLACE FUNCTION sync_notify() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('{NOTIFY_CHANNEL}', TG_TABLE_NAME);
        RETURN NULL;
    END $$
    """,
]
DROP_POSTGRES_FUNCTIONS = [
    f"DROP FUNCTION IF EXISTS {name}()" for name in ("sync_stamp", "sync_tombstone", "sync_notify")
]

_SQLITE_TICK = (
    "INSERT INTO sync_clock (id, value) VALUES (1, 1) "
    "ON CONFLICT (id) DO UPDATE SET value = value + 1;"
)
_SQLITE_NOW = "(SELECT value FROM sync_clock WHERE id = 1)"
# The format SQLAlchemy stores SQLite datetimes in, so purge's comparisons hold.
_SQLITE_TIMESTAMP = "strftime('%Y-%m-%d %H:%M:%f', 'now') || '000'"


def trigger_statements(table: str, dialect: str) -> list[str]:
    """The DDL that makes `table` a synced table (it has the `sync_xid` column)."""
    if dialect == "postgresql":
        return [
            f'CREATE TRIGGER "{table}_sync_stamp" BEFORE INSERT OR UPDATE ON "{table}" '
            "FOR EACH ROW EXECUTE FUNCTION sync_stamp()",
            f'CREATE TRIGGER "{table}_sync_tombstone" AFTER DELETE ON "{table}" '
            "REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION sync_tombstone()",
            f'CREATE TRIGGER "{table}_sync_notify" AFTER INSERT OR UPDATE OR DELETE ON "{table}" '
            "FOR EACH STATEMENT EXECUTE FUNCTION sync_notify()",
        ]
    stamp = f'UPDATE "{table}" SET {SYNC_COLUMN} = {_SQLITE_NOW} WHERE id = NEW.id;'
    return [
        f'CREATE TRIGGER "{table}_sync_insert" AFTER INSERT ON "{table}" '
        f"BEGIN {_SQLITE_TICK} {stamp} END",
        # The stamp's own UPDATE leaves sync_xid changed: no second round.
        f'CREATE TRIGGER "{table}_sync_update" AFTER UPDATE ON "{table}" '
        f"WHEN NEW.{SYNC_COLUMN} IS OLD.{SYNC_COLUMN} BEGIN {_SQLITE_TICK} {stamp} END",
        f'CREATE TRIGGER "{table}_sync_delete" AFTER DELETE ON "{table}" BEGIN {_SQLITE_TICK} '
        "INSERT INTO sync_tombstones (resource, row_id, xid, deleted_at) "
        f"VALUES ('{table}', OLD.id, {_SQLITE_NOW}, {_SQLITE_TIMESTAMP}); END",
    ]


def drop_trigger_statements(table: str, dialect: str) -> list[str]:
    if dialect == "postgresql":
        names = ("sync_stamp", "sync_tombstone", "sync_notify")
        return [f'DROP TRIGGER IF EXISTS "{table}_{name}" ON "{table}"' for name in names]
    names = ("sync_insert", "sync_update", "sync_delete")
    return [f'DROP TRIGGER IF EXISTS "{table}_{name}"' for name in names]


def sync_index(table: Table) -> Index:
    """The (sync_xid, id) index the change feed walks."""
    return Index(f"ix_{table.name}_sync_xid_id", table.c[SYNC_COLUMN], table.c.id)


def install(table: Table) -> None:
    """Declare `table` synced: its index joins the metadata (so autogenerate writes it), and
    `create_all` (tests' own tables) adds the triggers; migrations call
    `op.create_sync_triggers` (app/crud/sync/migration.py)."""
    if SYNC_COLUMN not in table.c:
        raise ValueError(
            f"{table.name}: sync needs the `{SYNC_COLUMN}` column of app.crud.table.Versioned "
            "(or declare the resource with sync=False)"
        )
    if not any(index.name == f"ix_{table.name}_sync_xid_id" for index in table.indexes):
        sync_index(table)

    @event.listens_for(table, "after_create")
    def create_triggers(target: Table, connection: Connection, **_: object) -> None:
        for statement in trigger_statements(target.name, connection.dialect.name):
            connection.exec_driver_sql(statement)
