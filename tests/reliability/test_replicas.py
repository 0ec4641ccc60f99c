"""Generated reads on a real streaming replica (DATABASE_REPLICA_URL, docs/scaling.md).

A throw-away primary and standby (tests/reliability/replica.py). Paused replay makes the
standby's state visibly older than the primary's, which tells who answered: a client that did
not write reads the standby, one that just wrote reads the primary. A lagging, stopped or
promoted standby is skipped without a failed read. The tests share one pair and run in file
order: the promotion comes last.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from app.core.config import Settings
from app.core.replica import APPLICATION_NAME
from app.main import create_app
from tests.conftest import Serve, run_alembic
from tests.reliability import cluster, replica
from tests.reliability.cluster import Cluster
from tests.reliability.replica import Standby, connect, create_database
from tests.sse import sign_up

pytestmark = pytest.mark.postgres

POSTS = "/api/v1/posts"
Pair = tuple[Cluster, Standby]
Urls = tuple[str, str]  # the app's database on the primary, on the standby


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    with replica.primary_and_standby(cluster.binaries()) as running:
        yield running


@pytest.fixture(scope="module")
def urls(pair: Pair) -> Urls:
    primary, standby = pair
    on_primary, on_standby = create_database(primary, standby, "app")
    run_alembic("upgrade", "head", database_url=on_primary)
    standby.wait_caught_up(primary)
    return on_primary, on_standby


@pytest.fixture
def build(serve: Serve, urls: Urls) -> Callable[..., Awaitable[FastAPI]]:
    """An app on the pair (lifespan on), measuring the replica every 0.1 s."""

    async def start(max_lag: float = 60, replica_url: str | None = None) -> FastAPI:
        settings = Settings(
            DATABASE_URL=urls[0],
            DATABASE_REPLICA_URL=replica_url or urls[1],
            DATABASE_DIRECT_URL="",
            DB_PGBOUNCER=False,
            REPLICA_CHECK_SECONDS=0.1,
            REPLICA_MAX_LAG_SECONDS=max_lag,
            REPLICA_STICKY_SECONDS=max_lag,
        )
        application = create_app(settings)
        await serve(application)
        return application

    return start


@pytest.fixture
async def clients() -> AsyncIterator[Callable[[FastAPI], AsyncClient]]:
    """Clients of their own (cookie jars of their own) for an app."""
    opened: list[AsyncClient] = []

    def client(application: FastAPI) -> AsyncClient:
        transport = ASGITransport(app=application)
        opened.append(AsyncClient(transport=transport, base_url="http://testserver"))
        return opened[-1]

    yield client
    for http in opened:
        await http.aclose()


async def create_post(writer: AsyncClient, headers: dict[str, str]) -> int:
    created = await writer.post(POSTS, json={"title": "fresh", "content": "c"}, headers=headers)
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


async def eventually(check: Callable[[], bool], what: str) -> None:
    for _ in range(150):
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"never: {what}")


async def replica_in_use(application: FastAPI) -> None:
    await eventually(lambda: application.state.db.replica.usable, "the replica is in use")


async def eventually_found(http: AsyncClient, post_id: int) -> None:
    for _ in range(100):
        if (await http.get(f"{POSTS}/{post_id}")).status_code == 200:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"post {post_id} was never read")


def read_pool_backends(standby: Standby) -> int:
    """The app's read connections, as the standby's pg_stat_activity shows them."""
    with connect(standby) as db:
        row = db.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = 'app' AND application_name = %s",
            (APPLICATION_NAME,),
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_reads_go_to_the_replica_but_a_writer_reads_its_writes(
    build: Callable[..., Awaitable[FastAPI]], clients: Callable[[FastAPI], AsyncClient], pair: Pair
) -> None:
    primary, standby = pair
    application = await build()
    writer, reader = clients(application), clients(application)
    _, headers = await sign_up(writer, "", "writer")
    refused = await reader.post(POSTS, json={"title": ""}, headers=headers)
    assert refused.status_code == 422 and "read_primary" not in reader.cookies
    await replica_in_use(application)
    standby.pause_replay()
    try:
        post_id = await create_post(writer, headers)
        assert "read_primary" in writer.cookies
        assert (await writer.get(f"{POSTS}/{post_id}")).status_code == 200  # the primary
        assert (await reader.get(f"{POSTS}/{post_id}")).status_code == 404  # the replica
        listed = await reader.get(POSTS)
        assert listed.status_code == 200
        assert post_id not in [item["id"] for item in listed.json()["items"]]
        assert read_pool_backends(standby) > 0
    finally:
        standby.resume_replay()
    standby.wait_caught_up(primary)
    assert (await reader.get(f"{POSTS}/{post_id}")).status_code == 200


async def test_a_lagging_replica_is_skipped(
    build: Callable[..., Awaitable[FastAPI]], clients: Callable[[FastAPI], AsyncClient], pair: Pair
) -> None:
    primary, standby = pair
    application = await build(max_lag=0.5)
    writer, reader = clients(application), clients(application)
    _, headers = await sign_up(writer, "", "lagging")
    await replica_in_use(application)
    standby.pause_replay()
    try:
        post_id = await create_post(writer, headers)
        await eventually_found(reader, post_id)  # replay is still paused: the primary read it
        assert application.state.db.replica.usable is False
    finally:
        standby.resume_replay()
    standby.wait_caught_up(primary)


def apply_delay(standby: Standby, delay: str) -> None:
    """Replay each commit `delay` late (`recovery_min_apply_delay`; '0' turns it off)."""
    with connect(standby) as db:
        db.execute(f"ALTER SYSTEM SET recovery_min_apply_delay = '{delay}'")
        db.execute("SELECT pg_reload_conf()")


async def test_steady_writes_keep_a_replica_that_keeps_up(
    build: Callable[..., Awaitable[FastAPI]], clients: Callable[[FastAPI], AsyncClient], pair: Pair
) -> None:
    """Lag is how long ago the replica held all the primary had, not whether it holds the
    primary's latest write: a replica always 0.3 s behind a steady stream of writes (longer
    than a check's interval, well under the limit) stays in use."""
    primary, standby = pair
    application = await build(max_lag=2)
    writer = clients(application)
    _, headers = await sign_up(writer, "", "steady")
    await replica_in_use(application)
    apply_delay(standby, "300ms")
    try:
        samples: list[bool] = []
        for _ in range(80):  # 4 s of a write every 50 ms
            await create_post(writer, headers)
            samples.append(application.state.db.replica.usable)
            await asyncio.sleep(0.05)
    finally:
        apply_delay(standby, "0")
    standby.wait_caught_up(primary)
    assert all(samples), samples


async def test_a_stopped_replica_costs_no_read(
    build: Callable[..., Awaitable[FastAPI]], clients: Callable[[FastAPI], AsyncClient], pair: Pair
) -> None:
    primary, standby = pair
    application = await build()
    reader = clients(application)
    statuses: list[int] = []
    done = asyncio.Event()

    async def read() -> None:
        while not done.is_set():
            statuses.append((await reader.get(POSTS, params={"limit": 5})).status_code)

    await replica_in_use(application)
    readers = [asyncio.create_task(read()) for _ in range(4)]
    await asyncio.sleep(0.3)
    await asyncio.to_thread(standby.stop)  # fast shutdown: its sessions are cut mid-read
    await asyncio.sleep(1)
    done.set()
    await asyncio.gather(*readers)
    assert statuses and set(statuses) == {200}
    await asyncio.to_thread(standby.start)
    standby.wait_streaming()
    standby.wait_caught_up(primary)
    await replica_in_use(application)  # again
    assert (await reader.get(POSTS)).status_code == 200


async def test_a_replica_url_that_is_the_primary_works_with_a_warning(
    build: Callable[..., Awaitable[FastAPI]],
    clients: Callable[[FastAPI], AsyncClient],
    urls: Urls,
    capsys: pytest.CaptureFixture[str],
) -> None:
    application = await build(replica_url=urls[0])
    output = ""
    for _ in range(150):  # the first measure runs once the app is up
        output += capsys.readouterr().out
        if "not a standby" in output:
            break
        await asyncio.sleep(0.1)
    assert "DATABASE_REPLICA_URL is not a standby" in output  # the app's log, on stdout
    assert application.state.db.replica.usable is False
    assert (await clients(application).get(POSTS)).status_code == 200


async def test_a_promoted_replica_is_left_alone(
    build: Callable[..., Awaitable[FastAPI]], clients: Callable[[FastAPI], AsyncClient], pair: Pair
) -> None:
    """Last: it ends the replication."""
    _, standby = pair
    application = await build()
    writer, reader = clients(application), clients(application)
    _, headers = await sign_up(writer, "", "promoted")
    await replica_in_use(application)
    standby.promote()
    post_id = await create_post(writer, headers)  # on the old primary only
    await eventually_found(reader, post_id)
    assert application.state.db.replica.usable is False
