"""The app behind a real PgBouncer in transaction mode (DB_PGBOUNCER, docs/scaling.md).

Concurrent requests from one worker's pool share PgBouncer's few server connections, so a
statement prepared on one server connection would be missing on the next (psycopg prepares a
statement run five times): with DB_PGBOUNCER it never prepares one. A PgBouncer restart under
load costs at worst a 503 with Retry-After, and the app recovers by itself. The live feed gets
its LISTEN connection from DATABASE_DIRECT_URL, or polls without one; the release phase
migrates through PgBouncer (its lock is a transaction's).
"""

import asyncio
import subprocess
from collections import Counter
from collections.abc import Iterator

import psycopg
import pytest
from httpx import AsyncClient, Response

from app.core.config import Settings
from app.main import create_app
from tests.conftest import Serve
from tests.deploy.services import ROOT, app_env, command, migrated_database, serving_in_thread
from tests.pgbouncer import POOL_SIZE, PgBouncer, available, pgbouncer
from tests.reliability.cluster import required
from tests.sse import open_events, sign_up

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not available() and not required(), reason="pgbouncer is not installed (.ci/run does)"
    ),
]

POSTS = "/api/v1/posts"
CLIENTS = 20  # concurrent requests: twice the app's pool, four times PgBouncer's


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with migrated_database("pgbouncer") as url:
        yield url


@pytest.fixture
def bouncer(database: str) -> Iterator[PgBouncer]:
    with pgbouncer(database) as running:
        yield running


def through(bouncer: PgBouncer, database: str, direct: bool = True) -> Settings:
    name = database.rsplit("/", 1)[1]
    return Settings(
        DATABASE_URL=bouncer.url(name),
        DB_PGBOUNCER=True,
        DATABASE_DIRECT_URL=database if direct else "",
        DB_POOL_SIZE=10,
        SSE_POLL_SECONDS=0.2,
    )


def server_connections(bouncer: PgBouncer, database: str) -> int:
    """PgBouncer's server connections to the app's database (`SHOW SERVERS`)."""
    with psycopg.connect(bouncer.url("pgbouncer"), autocommit=True) as admin:
        cursor = admin.execute("SHOW SERVERS")
        column = [description.name for description in cursor.description or ()].index("database")
        return sum(1 for row in cursor.fetchall() if row[column] == database)


async def a_writer(http: AsyncClient) -> dict[str, str]:
    _, headers = await sign_up(http, "", "bouncer")
    return headers


async def mixed_requests(http: AsyncClient, headers: dict[str, str], rounds: int) -> list[Response]:
    """Each client: create a post, read it, list, update it; `rounds` times."""
    responses: list[Response] = []
    for n in range(rounds):
        created = await http.post(POSTS, json={"title": f"t{n}", "content": "c"}, headers=headers)
        responses.append(created)
        if created.status_code != 201:
            continue
        url = f"{POSTS}/{created.json()['id']}"
        responses.append(await http.get(url, headers=headers))
        responses.append(await http.get(POSTS, params={"limit": 5}, headers=headers))
        patched = await http.patch(url, json={"title": f"u{n}"}, headers=headers)
        responses.append(patched)
    return responses


async def test_concurrent_requests_share_pgbouncers_server_connections(
    serve: Serve, bouncer: PgBouncer, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    http = await serve(create_app(through(bouncer, database)))
    # The test server's role has no statement_timeout: start-up says how to set it.
    assert "ALTER ROLE CURRENT_USER SET statement_timeout = 10000" in capsys.readouterr().out
    headers = await a_writer(http)
    batches = await asyncio.gather(*(mixed_requests(http, headers, 10) for _ in range(CLIENTS)))
    statuses = Counter(response.status_code for batch in batches for response in batch)
    assert set(statuses) <= {200, 201}, [r.text for b in batches for r in b if r.status_code >= 300]
    assert statuses[201] == CLIENTS * 10
    assert 0 < server_connections(bouncer, database.rsplit("/", 1)[1]) <= POOL_SIZE


async def test_a_pgbouncer_restart_under_load_is_503_at_worst(
    serve: Serve, bouncer: PgBouncer, database: str
) -> None:
    http = await serve(create_app(through(bouncer, database)))
    headers = await a_writer(http)
    responses: list[Response] = []
    stop = asyncio.Event()

    async def load() -> None:
        while not stop.is_set():
            responses.append(await http.get(POSTS, params={"limit": 5}, headers=headers))
            await asyncio.sleep(0.01)

    clients = [asyncio.create_task(load()) for _ in range(4)]
    await asyncio.sleep(0.5)
    bouncer.stop()  # every client and server connection cut at once
    await asyncio.sleep(1)
    bouncer.start()
    await asyncio.sleep(1)
    stop.set()
    await asyncio.gather(*clients)
    refused = [response for response in responses if response.status_code != 200]
    assert {response.status_code for response in refused} <= {503}, refused[0].text
    assert all(response.headers.get("retry-after") for response in refused)
    assert refused, "the restart went unnoticed: the test did not cut any connection"

    for _ in range(100):  # the same app, no restart: it reconnects by itself
        recovered = await http.get(POSTS, params={"limit": 5}, headers=headers)
        if recovered.status_code == 200:
            break
        await asyncio.sleep(0.1)
    assert recovered.status_code == 200, recovered.text
    created = await http.post(POSTS, json={"title": "after", "content": "c"}, headers=headers)
    assert created.status_code == 201, created.text


@pytest.mark.parametrize("direct", [True, False], ids=["listen-direct", "poll"])
async def test_the_live_feed_behind_pgbouncer(
    bouncer: PgBouncer, database: str, direct: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    application = create_app(through(bouncer, database, direct=direct))
    with serving_in_thread(application) as url:  # a real server: the stream arrives as it goes
        warned = "without DATABASE_DIRECT_URL: the live feed polls" in capsys.readouterr().out
        assert warned is not direct
        async with AsyncClient(base_url=url, timeout=30) as http:
            headers = await a_writer(http)
            async with open_events(http, f"{POSTS}/events") as stream:
                await stream.ready()
                body = {"title": "live", "content": "c"}
                created = await http.post(POSTS, json=body, headers=headers)
                assert created.status_code == 201
                event = await stream.next(within=15)
                assert event is not None and event.event == "changes", event
                assert [item["data"]["id"] for item in event.json()["items"]] == [
                    created.json()["id"]
                ]


def test_the_release_phase_migrates_through_pgbouncer() -> None:
    """Two releases at once through PgBouncer, no DATABASE_DIRECT_URL: both succeed, and the
    migration lock (held by the migrations' transaction) makes the second find nothing to do."""
    with migrated_database("pgbouncer_release") as url, pgbouncer(url) as bouncer:
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        env = app_env(bouncer.url(name), DB_PGBOUNCER="true", DATABASE_DIRECT_URL="")
        releases = [
            subprocess.Popen(command("release"), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
            for _ in range(2)
        ]  # fmt: skip
        outputs = [release.communicate(timeout=120)[0] for release in releases]
        assert [release.returncode for release in releases] == [0, 0], outputs
        with psycopg.connect(url) as connection:
            heads = connection.execute("SELECT version_num FROM alembic_version").fetchall()
            users = connection.execute("SELECT count(*) FROM users").fetchone()
        assert len(heads) == 1
        assert users == (1,)  # the first superuser, created once
