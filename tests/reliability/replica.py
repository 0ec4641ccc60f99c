"""A throw-away primary and hot standby joined by streaming replication, for replica tests.

Both are clusters like tests/reliability/cluster.py's (the `postgres` user, 127.0.0.1 only,
free ports, temporary directories, fsync off), removed afterwards even when the test fails.
The standby is a `pg_basebackup -R -X stream` of the primary that streams through a physical
replication slot, so it can be stopped for a while and still catch up. Tests make it lag by
pausing replay (WAL keeps arriving but is not applied), and fail over by promoting it.
initdb's `--auth=trust` already lets `replication` connections in from 127.0.0.1.
"""

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from tests.deploy.services import free_port
from tests.reliability.cluster import MAIN_PORT, OWNER, Cluster

SLOT = "standby"
TIMEOUT = 120.0
# Explicit, although PostgreSQL 10+ defaults to them, so a packaged sample cannot change them.
PRIMARY_SETTINGS = """
wal_level = replica
max_wal_senders = 5
max_replication_slots = 5
hot_standby = on
"""


def connect(server: Cluster, database: str = "postgres") -> psycopg.Connection[Any]:
    """An autocommit connection to one database of the cluster."""
    return psycopg.connect(
        host="127.0.0.1",
        port=server.port,
        user=OWNER,
        dbname=database,
        autocommit=True,
        connect_timeout=10,
    )


def url(server: Cluster, database: str = "postgres") -> str:
    """The SQLAlchemy URL of one database of the cluster (`Cluster.url` is for `postgres`)."""
    return f"postgresql+psycopg://{OWNER}@127.0.0.1:{server.port}/{database}"


def _value(server: Cluster, query: str, *params: object) -> Any:
    with connect(server) as db:
        row = db.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def _flushed(primary: Cluster) -> str:
    """The primary's WAL position once all of it so far is flushed, so can be streamed.

    Cluster runs with synchronous_commit=off, where a commit may still sit in WAL buffers
    (past pg_current_wal_lsn(), unsent) when the client sees it. A synchronous commit of a
    transaction that wrote WAL flushes everything inserted before it; a transactional
    logical message is the smallest such write (an xid alone writes no WAL, so no flush).
    """
    with connect(primary) as db:
        db.execute("SET synchronous_commit = on")
        db.execute("SELECT pg_logical_emit_message(true, 'tests.reliability.replica', 'flush')")
        row = db.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    return str(row[0])


def _wait(done: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout:.0f}s")
        time.sleep(0.1)


@dataclass
class Standby(Cluster):
    """A hot standby: read-only while in recovery; `start()`/`stop()` as for any cluster."""

    def in_recovery(self) -> bool:
        return bool(_value(self, "SELECT pg_is_in_recovery()"))

    def wait_streaming(self, timeout: float = TIMEOUT) -> None:
        """Returns once the WAL receiver streams from the primary (after `start()`, say)."""
        _wait(
            lambda: _value(self, "SELECT count(*) FROM pg_stat_wal_receiver "
                                 "WHERE status = 'streaming'") == 1,
            timeout,
            f"streaming to the standby on port {self.port}",
        )  # fmt: skip

    def wait_received(self, primary: Cluster, timeout: float = TIMEOUT) -> None:
        """Returns once the standby has received all WAL of commits made on the primary so far.

        Replay may still be behind (paused, say): this proves WAL arrived, not that it shows.
        """
        self._wait_for("pg_last_wal_receive_lsn()", primary, timeout)

    def wait_caught_up(self, primary: Cluster, timeout: float = TIMEOUT) -> None:
        """Returns once the standby has replayed all WAL of commits made on the primary so far:
        every transaction committed there before the call is then visible on the standby."""
        self._wait_for("pg_last_wal_replay_lsn()", primary, timeout)

    def _wait_for(self, position: str, primary: Cluster, timeout: float) -> None:
        target = _flushed(primary)
        reached = f"SELECT coalesce({position} >= %s::pg_lsn, false)"
        _wait(
            lambda: bool(_value(self, reached, target)),
            timeout,
            f"the standby's {position} reaching the primary's {target}",
        )

    def pause_replay(self, timeout: float = TIMEOUT) -> None:
        """Stops applying WAL; returns once replay has actually paused (not just requested).
        Commits on the primary from then on stay invisible here until `resume_replay()`."""
        with connect(self) as db:
            db.execute("SELECT pg_wal_replay_pause()")
        _wait(
            lambda: _value(self, "SELECT pg_get_wal_replay_pause_state()") == "paused",
            timeout,
            f"pausing replay on the standby on port {self.port}",
        )

    def resume_replay(self) -> None:
        """Applies WAL again; use `wait_caught_up` to wait for the backlog."""
        with connect(self) as db:
            db.execute("SELECT pg_wal_replay_resume()")

    def promote(self, timeout: float = TIMEOUT) -> None:
        """Ends recovery: returns once the standby is a primary that accepts writes."""
        self.pg_ctl("promote", "-w", "-t", str(int(timeout)), timeout=timeout + 30)
        _wait(lambda: not self.in_recovery(), timeout, f"promoting the standby on {self.port}")


def create_database(
    primary: Cluster, standby: Standby, name: str, timeout: float = TIMEOUT
) -> tuple[str, str]:
    """Creates database `name` on the primary and returns once the standby has it too:
    (its SQLAlchemy URL on the primary, on the standby)."""
    with connect(primary) as db:
        db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    standby.wait_caught_up(primary, timeout)
    assert _value(standby, "SELECT count(*) FROM pg_database WHERE datname = %s", name) == 1
    return url(primary, name), url(standby, name)


def _home(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    owner = pwd.getpwnam(OWNER)
    os.chown(path, owner.pw_uid, owner.pw_gid)


def _other_port(*taken: int) -> int:
    while (port := free_port()) in (*taken, MAIN_PORT):
        pass
    return port


def _discard(server: Cluster | None) -> None:
    with contextlib.suppress(subprocess.SubprocessError):
        if server is not None and server.data.exists() and server.running():
            server.pg_ctl("stop", "-m", "immediate", "-w")


@contextlib.contextmanager
def primary_and_standby(bindir: Path) -> Iterator[tuple[Cluster, Standby]]:
    """A started primary and a hot standby streaming from it and caught up with it;
    both stopped and deleted afterwards, whatever happens."""
    base = Path(tempfile.mkdtemp(prefix="reliability-replica-"))
    standby: Standby | None = None
    # Each server gets its own directory: Cluster keeps its log and socket beside its data.
    primary = Cluster(base / "primary" / "data", _other_port(), bindir)
    try:
        for home in (base, primary.data.parent, base / "standby"):
            _home(home)
        primary.run(
            str(bindir / "initdb"), "-D", str(primary.data), "-U", OWNER, "--auth=trust",
            "-E", "UTF8", "--no-sync", timeout=120,
        )  # fmt: skip
        with (primary.data / "postgresql.conf").open("a") as conf:
            conf.write(PRIMARY_SETTINGS)
        primary.start()
        standby = Standby(base / "standby" / "data", _other_port(primary.port), bindir)
        primary.run(
            str(bindir / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port),
            "-U", OWNER, "-D", str(standby.data), "-R", "-X", "stream", "-C", "-S", SLOT,
            "--no-sync", timeout=300,
        )  # fmt: skip
        standby.start()
        standby.wait_streaming()
        standby.wait_caught_up(primary)
        yield primary, standby
    finally:
        _discard(standby)
        _discard(primary)
        shutil.rmtree(base, ignore_errors=True)
