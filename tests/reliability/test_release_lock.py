"""Two release phases at once (`python -m scripts.release`, the Procfile's `release:`).

Hosts that deploy together run it together. The migrations hold a PostgreSQL advisory lock
(alembic/env.py), so the second waits and then finds nothing to do: both exit 0 and every
migration runs once. The test makes the overlap certain instead of likely: it holds the lock
itself until both processes wait for it. The first superuser the release creates is made
once as well, even when both releases look for it before either has stored it.
"""

import contextlib
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.deploy.services import ROOT, SUPERUSER_EMAIL, app_env, command

pytestmark = pytest.mark.postgres

MIGRATION_LOCK_ID = 7_212_023  # alembic/env.py
RELEASE = command("release")  # the Procfile's
WAITING_FOR_THE_MIGRATION_LOCK = """
    SELECT count(*) FROM pg_locks
    WHERE locktype = 'advisory' AND NOT granted AND objid = %s AND database = (
        SELECT oid FROM pg_database WHERE datname = current_database())
"""
WAITING_ON_LOCKS = """
    SELECT count(*) FROM pg_stat_activity
    WHERE datname = current_database() AND wait_event_type = 'Lock'
"""


def revisions() -> int:
    return len(list((ROOT / "alembic" / "versions").glob("*.py")))


@pytest.fixture
def database_url() -> Iterator[str]:
    """A fresh, empty database on the test server."""
    server = make_url(os.environ["TEST_DATABASE_URL"]).set(drivername="postgresql")
    admin = server.set(database="postgres").render_as_string(hide_password=False)
    name = f"release_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def releases(url: str, logs: Path, **env: str) -> Iterator[list[subprocess.Popen[str]]]:
    """Two release processes started together; killed if still running when the block ends."""
    processes = []
    try:
        for index in range(2):
            with (logs / f"release-{index}.log").open("w") as out:
                processes.append(
                    subprocess.Popen(
                        RELEASE,
                        cwd=ROOT,
                        env=app_env(url, **env),
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        text=True,
                    )
                )
        yield processes
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)


def wait_until(
    check: Callable[[], bool], what: str, processes: list[subprocess.Popen[str]]
) -> None:
    """Until check() holds; fails at once if a release exits in the meantime."""
    deadline = time.monotonic() + 60
    while not check():
        exited = [process.returncode for process in processes if process.poll() is not None]
        assert not exited, f"a release exited ({exited}) before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def finish(processes: list[subprocess.Popen[str]], logs: Path) -> list[str]:
    """Each release's output, after checking that it exited 0."""
    outputs = []
    for index, process in enumerate(processes):
        code = process.wait(timeout=120)
        output = (logs / f"release-{index}.log").read_text()
        assert code == 0, f"release {index} exited {code}:\n{output}"
        outputs.append(output)
    return outputs


def count(connection: psycopg.Connection[Any], query: str, *params: object) -> int:
    row = connection.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def test_concurrent_releases_migrate_once(database_url: str, tmp_path: Path) -> None:
    with (
        psycopg.connect(database_url, autocommit=True) as holder,
        psycopg.connect(database_url, autocommit=True) as watcher,
    ):
        holder.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_ID,))
        with releases(database_url, tmp_path, FIRST_SUPERUSER_EMAIL="") as processes:
            try:
                wait_until(
                    lambda: count(watcher, WAITING_FOR_THE_MIGRATION_LOCK, MIGRATION_LOCK_ID) == 2,
                    "both releases to wait for the migration lock",
                    processes,
                )
            finally:
                holder.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_ID,))
            outputs = finish(processes, tmp_path)

    ran = [line for output in outputs for line in output.splitlines() if "Running upgrade" in line]
    assert len(ran) == revisions(), "\n".join(ran)  # each migration once...
    assert len([output for output in outputs if "Running upgrade" in output]) == 1  # ...by one
    with psycopg.connect(database_url) as connection:
        assert count(connection, "SELECT count(*) FROM alembic_version") == 1


def test_concurrent_releases_create_the_first_superuser_once(
    database_url: str, tmp_path: Path
) -> None:
    """Both releases get past their migrations while no superuser exists; one creates it,
    the other finds it and still exits 0."""
    # Migrated, with no superuser yet: the state of a first deploy.
    bootstrap = subprocess.run(
        RELEASE, cwd=ROOT, env=app_env(database_url, FIRST_SUPERUSER_EMAIL=""),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bootstrap.returncode == 0, bootstrap.stdout + bootstrap.stderr
    with (
        psycopg.connect(database_url, autocommit=True) as holder,
        psycopg.connect(database_url, autocommit=True) as watcher,
    ):
        # Reads go on under SHARE, writes wait: both releases can look for a superuser, and
        # neither can store one until both are blocked (wherever each one blocks).
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE users IN SHARE MODE")
        with releases(database_url, tmp_path) as processes:
            try:
                wait_until(
                    lambda: count(watcher, WAITING_ON_LOCKS) == 2,
                    "both releases to block on a lock",
                    processes,
                )
            finally:
                holder.execute("ROLLBACK")
            finish(processes, tmp_path)
    with psycopg.connect(database_url) as connection:
        superusers = connection.execute("SELECT email FROM users WHERE is_superuser").fetchall()
    assert superusers == [(SUPERUSER_EMAIL,)]
