"""The migrations build the schema the models describe, both ways, on an empty database."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, inspect, make_url, text
from sqlmodel import SQLModel

from app.core.config import get_settings
from app.crud.resource import registry
from app.crud.sync.schema import trigger_statements
from tests.conftest import run_alembic


def admin_connection() -> psycopg.Connection:
    server = make_url(get_settings().DATABASE_URL).set(drivername="postgresql", database="postgres")
    return psycopg.connect(server.render_as_string(hide_password=False), autocommit=True)


@pytest.fixture(
    params=[pytest.param("postgresql", marks=pytest.mark.postgres), pytest.param("sqlite")]
)
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A throw-away database (on the test server for PostgreSQL), dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"
        return
    name = f"migrations_{uuid.uuid4().hex[:12]}"
    with admin_connection() as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        url = make_url(get_settings().DATABASE_URL).set(database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with admin_connection() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def table_names(database_url: str) -> set[str]:
    url = make_url(database_url)
    engine = create_engine(url.set(drivername=url.get_backend_name()))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def trigger_names(database_url: str) -> set[str]:
    url = make_url(database_url)
    engine = create_engine(url.set(drivername=url.get_backend_name()))
    query = (
        "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
        if url.get_backend_name() == "postgresql"
        else "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    )
    try:
        with engine.connect() as connection:
            return set(connection.execute(text(query)).scalars())
    finally:
        engine.dispose()


def sync_triggers(database_url: str) -> set[str]:
    """The triggers every synced resource's table needs (app/crud/sync/schema.py)."""
    dialect = make_url(database_url).get_backend_name()
    return {
        statement.split('"')[1]
        for resource in registry
        if resource.sync
        for statement in trigger_statements(resource.sa_table.name, dialect)
    }


def test_upgrade_check_downgrade_upgrade(empty_database: str) -> None:
    model_tables = set(SQLModel.metadata.tables)

    run_alembic("upgrade", "head", database_url=empty_database)
    assert table_names(empty_database) == model_tables | {"alembic_version"}

    check = run_alembic("check", database_url=empty_database)
    assert "No new upgrade operations detected" in check.stdout + check.stderr

    run_alembic("downgrade", "base", database_url=empty_database)
    assert table_names(empty_database) == {"alembic_version"}

    run_alembic("upgrade", "head", database_url=empty_database)
    assert table_names(empty_database) == model_tables | {"alembic_version"}
    # Every synced table keeps its change triggers (a SQLite table recreated by a batch
    # migration would lose them).
    assert sync_triggers(empty_database) <= trigger_names(empty_database)
