"""One connection pool per worker: however many requests wait, PostgreSQL never sees more than
WEB_CONCURRENCY times DB_POOL_SIZE connections from the app, and the start-up log says so."""

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.deploy.conftest import run_release
from tests.deploy.services import (
    PASSWORD,
    app_env,
    command,
    free_port,
    login,
    register,
    running,
    unique_email,
    wait_until_ready,
)

pytestmark = pytest.mark.postgres

WORKERS, POOL_SIZE = 2, 3
BUDGET = WORKERS * POOL_SIZE
CONCURRENCY = 40  # requests in flight at any time, far more than the pools hold
SECONDS = 4


@contextmanager
def peak_connections(database_url: str) -> Iterator[dict[str, int]]:
    """The most client connections to the app's database seen, polled every 10 ms.

    The poller connects to the maintenance database, so it is never one of them; autovacuum
    workers are not clients, so they are not counted either.
    """
    url = make_url(database_url)
    admin = url.set(drivername="postgresql", database="postgres")
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
        " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
    )
    seen = {"peak": 0, "samples": 0}
    stop = threading.Event()

    def poll(connection: psycopg.Connection[Any]) -> None:
        with connection:
            while not stop.is_set():
                row = connection.execute(query, (url.database,)).fetchone()
                seen["peak"] = max(seen["peak"], row[0] if row else 0)
                seen["samples"] += 1
                stop.wait(0.01)

    connection = psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True)
    poller = threading.Thread(target=poll, args=(connection,))
    poller.start()
    try:
        yield seen
    finally:
        stop.set()
        poller.join(timeout=10)


async def drive(base_url: str, users: list[tuple[str, dict[str, str], int]]) -> list[str]:
    """CONCURRENCY clients, each sending a mix of requests until the deadline; returns every
    response that is neither a success nor a 503 that says when to retry."""
    deadline = time.monotonic() + SECONDS
    bad: list[str] = []

    async def client(index: int, http: httpx.AsyncClient) -> None:
        email, auth, own_post = users[index % len(users)]
        other_post = users[(index + 1) % len(users)][2]
        mix: list[tuple[str, str, dict[str, Any]]] = [
            ("POST", "/api/v1/auth/login", {"data": {"username": email, "password": PASSWORD}}),
            ("GET", "/api/v1/users/me", {"headers": auth}),
            ("GET", "/api/v1/posts", {"headers": auth}),
            ("GET", f"/api/v1/posts/{other_post}", {}),
            ("POST", "/api/v1/posts", {"headers": auth, "json": {"title": f"load {index}"}}),
            ("PATCH", f"/api/v1/posts/{own_post}", {"headers": auth, "json": {"content": "x"}}),
            ("GET", "/health/ready", {}),
        ]
        step = index  # each client starts at a different point of the mix
        while time.monotonic() < deadline:
            method, path, kwargs = mix[step % len(mix)]
            step += 1
            response = await http.request(method, path, **kwargs)
            retry_later = response.status_code == 503 and "Retry-After" in response.headers
            if not (response.is_success or retry_later):
                bad.append(f"{method} {path}: {response.status_code} {response.text[:200]}")

    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as http:
        await asyncio.gather(*(client(index, http) for index in range(CONCURRENCY)))
    return bad


def test_connections_stay_within_the_budget(
    create_database: Callable[[], str], tmp_path: Path
) -> None:
    # A database of its own: the session's shared web process must not add to the count.
    database_url = create_database()
    release = run_release(app_env(database_url))
    assert release.returncode == 0, release.stdout + release.stderr
    port = free_port()
    env = app_env(
        database_url,
        PORT=str(port),
        WEB_CONCURRENCY=str(WORKERS),
        DB_POOL_SIZE=str(POOL_SIZE),
        DB_MAX_OVERFLOW="5",  # no longer a setting: it must not raise the ceiling
        LOGIN_MAX_FAILURES="1000000",  # parallel logins from one address are claimed attempts
    )
    with running(command("web"), env, tmp_path, "web-budget") as service:
        wait_until_ready(service, port)
        base_url = f"http://127.0.0.1:{port}"
        users = []
        for index in range(4):
            email = unique_email(f"budget{index}")
            assert register(base_url, email).status_code == 201
            auth = {"Authorization": f"Bearer {login(base_url, email).json()['access_token']}"}
            post = httpx.post(
                f"{base_url}/api/v1/posts", json={"title": "t"}, headers=auth, timeout=30
            )
            assert post.status_code == 201, post.text
            users.append((email, auth, post.json()["id"]))

        with peak_connections(database_url) as seen:
            bad = asyncio.run(drive(base_url, users))

        assert not bad, f"{len(bad)} failed, e.g. {bad[:5]}\n{service.describe()}"
        assert seen["samples"] > 10
        served_by = {line["pid"] for line in service.access_lines()}
        assert len(served_by) == WORKERS, "the load did not reach every worker"
        assert seen["peak"] >= POOL_SIZE, f"the load never filled a pool: {seen}"
        assert seen["peak"] <= BUDGET, f"{seen['peak']} connections, over the budget of {BUDGET}"
        budget_line = (
            f"PostgreSQL connection budget: {WORKERS} workers \N{MULTIPLICATION SIGN}"
            f" DB_POOL_SIZE {POOL_SIZE} = {BUDGET} connections"
        )
        assert service.stderr().count(budget_line) == 1, service.describe()
