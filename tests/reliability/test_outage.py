"""Database outage: clear 503s within seconds while PostgreSQL is down, recovery with no restart.

The app runs in-process against a throw-away cluster of its own (tests/reliability/cluster.py),
which the test stops (`pg_ctl stop -m fast`) and starts again; the machine's main server is
never touched. The behaviour checked is the one app/core/database.py documents: while the
database is down every request answers 503 within DB_CONNECT_TIMEOUT, and the first request
after it accepts connections again succeeds.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from httpx import AsyncClient, Response

from app.core.config import Settings
from app.main import create_app
from tests.conftest import Serve, run_alembic
from tests.crud.formats import assert_problem
from tests.reliability import cluster
from tests.reliability.cluster import Cluster

pytestmark = pytest.mark.postgres

POSTS = "/api/v1/posts"
PASSWORD = "correct-horse-battery"
# While the database is down, every request that needs it answers 503 within this.
OUTAGE_ANSWER_SECONDS = 5


@pytest.fixture(scope="module")
def database() -> Iterator[Cluster]:
    with cluster.cluster(cluster.binaries()) as server:
        run_alembic("upgrade", "head", database_url=server.url)
        yield server


def settings(server: Cluster, **overrides: Any) -> Settings:
    return Settings(
        DATABASE_URL=server.url,
        ENVIRONMENT="test",
        SECRET_KEY="outage-tests-secret-key-0123456789abcdef",
        BCRYPT_ROUNDS=4,
        LOG_LEVEL="CRITICAL",
        LOGIN_MAX_FAILURES=1000,
        **overrides,
    )


async def sign_up(client: AsyncClient, email: str) -> dict[str, str]:
    body = {"email": email, "password": PASSWORD, "full_name": "Outage Test"}
    response = await client.post("/api/v1/auth/register", json=body)
    assert response.status_code == 201, response.text
    return await log_in(client, email)


async def log_in(client: AsyncClient, email: str) -> dict[str, str]:
    response = await client.post(
        "/api/v1/auth/login", data={"username": email, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def timed(call: Awaitable[Response]) -> tuple[Response, float]:
    started = time.monotonic()
    response = await call
    return response, time.monotonic() - started


def assert_unavailable(response: Response, elapsed: float, what: str) -> None:
    assert_problem(response, 503, "service-unavailable")
    assert int(response.headers["retry-after"]) >= 1, what
    assert elapsed < OUTAGE_ANSWER_SECONDS, f"{what} took {elapsed:.2f} s"


async def test_outage_answers_503_fast_and_recovers_without_restart(
    database: Cluster, serve: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    client = await serve(create_app(settings(database)))
    email = f"outage-{time.monotonic_ns()}@example.com"
    headers = await sign_up(client, email)
    created = await client.post(POSTS, json={"title": "Before"}, headers=headers)
    assert created.status_code == 201, created.text
    item = f"{POSTS}/{created.json()['id']}"
    # Warm the pools: several connections are open when the database goes away.
    await asyncio.gather(*(client.get(item, headers=headers) for _ in range(8)))

    calls: dict[str, Callable[[], Awaitable[Response]]] = {
        "read": lambda: client.get(item, headers=headers),
        "list": lambda: client.get(POSTS),
        "write": lambda: client.post(POSTS, json={"title": "Write"}, headers=headers),
        "login": lambda: client.post(
            "/api/v1/auth/login", data={"username": email, "password": PASSWORD}
        ),
        "me": lambda: client.get("/api/v1/users/me", headers=headers),
    }

    await asyncio.to_thread(database.stop)
    try:
        timings = {}
        # Twice each: the first meets a stale pooled connection, the second an empty pool.
        for attempt in (1, 2):
            for what, call in calls.items():
                response, elapsed = await timed(call())
                assert_unavailable(response, elapsed, f"{what} #{attempt}")
                timings[f"{what} #{attempt}"] = round(elapsed, 3)
        ready, elapsed = await timed(client.get("/health/ready"))
        assert_unavailable(ready, elapsed, "/health/ready")
        assert (await client.get("/health")).status_code == 200
    finally:
        await asyncio.to_thread(database.start)  # returns once it accepts connections

    # The very first request after that succeeds: no 503 left over from the outage, no wait
    # for the old pool's reconnect back-off. Then the first of each other kind does too.
    first, recovered_in = await timed(client.get(item, headers=headers))
    assert first.status_code == 200, first.text
    firsts = {what: await call() for what, call in calls.items() if what != "read"}
    assert {what: r.status_code for what, r in firsts.items()} == {
        "list": 200,
        "write": 201,
        "login": 200,
        "me": 200,
    }, {what: r.text for what, r in firsts.items()}
    # Stale connections are gone: everything works again, in parallel too.
    results = await asyncio.gather(
        *(client.get(item, headers=headers) for _ in range(10)),
        *(client.post(POSTS, json={"title": "After"}, headers=headers) for _ in range(5)),
        log_in(client, email),
    )
    assert [r.status_code for r in results[:15]] == [200] * 10 + [201] * 5
    assert (await client.get("/health/ready")).status_code == 200
    with capsys.disabled():
        print(
            f"\noutage: 503 answered in (s) {timings}; the first request after the restart "
            f"took {recovered_in:.3f} s"
        )


async def test_a_quick_restart_costs_at_most_one_503(database: Cluster, serve: Serve) -> None:
    """Stale pooled connections are discarded together, not found one 503 at a time."""
    client = await serve(create_app(settings(database, DB_POOL_SIZE=4)))
    headers = await sign_up(client, f"restart-{time.monotonic_ns()}@example.com")
    created = await client.post(POSTS, json={"title": "Before"}, headers=headers)
    item = f"{POSTS}/{created.json()['id']}"
    await asyncio.gather(*(client.get(item, headers=headers) for _ in range(8)))

    await asyncio.to_thread(database.stop)
    await asyncio.to_thread(database.start)
    statuses = [(await client.get(item, headers=headers)).status_code for _ in range(10)]
    statuses += [(await client.post(POSTS, json={"title": "After"}, headers=headers)).status_code]
    assert statuses in ([200] * 10 + [201], [503] + [200] * 9 + [201]), statuses


async def test_a_busy_pool_makes_requests_wait_not_fail(serve: Serve) -> None:
    """50 concurrent requests on 2 connections all succeed: 503 means down, not busy."""
    application = create_app(Settings(DB_POOL_SIZE=2))
    client = await serve(application)
    headers = await sign_up(client, f"busy-{time.monotonic_ns()}@example.com")
    created = await client.post(POSTS, json={"title": "Busy"}, headers=headers)
    item = f"{POSTS}/{created.json()['id']}"
    requests = [
        *(client.get(item, headers=headers) for _ in range(20)),
        *(client.get(POSTS, params={"limit": 50}) for _ in range(10)),
        *(client.post(POSTS, json={"title": f"Busy {n}"}, headers=headers) for n in range(15)),
        *(client.get("/api/v1/users/me", headers=headers) for _ in range(5)),
    ]
    responses = await asyncio.gather(*requests)
    statuses = [response.status_code for response in responses]
    assert statuses == [200] * 30 + [201] * 15 + [200] * 5, statuses
    # They really queued for the two connections.
    assert application.state.db.pool.get_stats().get("requests_queued", 0) > 0
