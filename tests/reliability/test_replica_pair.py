"""The replica pair of tests/reliability/replica.py does what replica tests rely on.

Rows reach the standby, which refuses writes; paused replay holds rows back until resumed;
a stopped standby catches up once started; a promoted standby takes writes. The tests share
one pair and run in file order: the promotion comes last, as it ends the replication.
"""

from collections.abc import Iterator

import psycopg
import pytest

from tests.reliability import cluster, replica
from tests.reliability.cluster import Cluster
from tests.reliability.replica import Standby, connect

pytestmark = pytest.mark.postgres

Pair = tuple[Cluster, Standby]


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    with replica.primary_and_standby(cluster.binaries()) as (primary, standby):
        with connect(primary) as db:
            db.execute("CREATE TABLE notes (body text PRIMARY KEY)")
        standby.wait_caught_up(primary)
        yield primary, standby


def write(server: Cluster, body: str) -> None:
    with connect(server) as db:
        db.execute("INSERT INTO notes (body) VALUES (%s)", (body,))


def present(server: Cluster, body: str) -> bool:
    with connect(server) as db:
        row = db.execute("SELECT count(*) FROM notes WHERE body = %s", (body,)).fetchone()
    assert row is not None
    return bool(row[0])


def test_a_row_written_on_the_primary_appears_on_the_standby(pair: Pair) -> None:
    primary, standby = pair
    write(primary, "replicated")
    standby.wait_caught_up(primary)
    assert present(standby, "replicated")
    assert standby.in_recovery()


def test_the_standby_refuses_writes(pair: Pair) -> None:
    _, standby = pair
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        write(standby, "refused")


def test_paused_replay_holds_rows_back_until_resumed(pair: Pair) -> None:
    primary, standby = pair
    standby.pause_replay()
    try:
        write(primary, "held back")
        standby.wait_received(primary)
        assert not present(standby, "held back")
        assert present(primary, "held back")
    finally:
        standby.resume_replay()
    standby.wait_caught_up(primary)
    assert present(standby, "held back")


def test_a_stopped_standby_catches_up_once_started(pair: Pair) -> None:
    primary, standby = pair
    standby.stop()
    write(primary, "while stopped")
    standby.start()
    standby.wait_streaming()
    standby.wait_caught_up(primary)
    assert present(standby, "while stopped")


def test_a_database_created_on_the_primary_reaches_the_standby(pair: Pair) -> None:
    primary, standby = pair
    on_primary, on_standby = replica.create_database(primary, standby, "replicated_app")
    assert on_primary == replica.url(primary, "replicated_app")
    assert on_standby == replica.url(standby, "replicated_app")
    with connect(primary, "replicated_app") as db:
        db.execute("CREATE TABLE items (id int PRIMARY KEY)")
        db.execute("INSERT INTO items VALUES (1)")
    standby.wait_caught_up(primary)
    with connect(standby, "replicated_app") as db:
        assert db.execute("SELECT id FROM items").fetchall() == [(1,)]


def test_a_promoted_standby_accepts_writes(pair: Pair) -> None:
    primary, standby = pair
    write(primary, "before promotion")
    standby.wait_caught_up(primary)
    standby.promote()
    assert not standby.in_recovery()
    write(standby, "after promotion")
    assert present(standby, "after promotion")
    assert present(standby, "before promotion")
