"""Load without loss: 200 concurrent clients for 20 s through gunicorn (2 workers) on PostgreSQL.

Each client has its own user and works on its own posts (create, update, delete), one request
at a time, recording every response. Afterwards there is no 5xx and the database holds exactly
what the successful responses said: every created and not deleted post, with the content of
its last successful PATCH, and nothing else.
"""

import asyncio
import contextlib
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.deploy.services import (
    PASSWORD,
    app_env,
    command,
    free_port,
    migrated_database,
    running,
    wait_until_ready,
)

pytestmark = pytest.mark.postgres

CLIENTS = 200
DURATION_SECONDS = 20
POSTS = "/api/v1/posts"
ONE_CONNECTION = httpx.Limits(max_connections=1, max_keepalive_connections=1)


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    """A fresh database on the test server, migrated by the Procfile's release command."""
    with migrated_database("load") as url:
        yield url


@contextlib.contextmanager
def web(database_url: str, logs: Path) -> Iterator[str]:
    """The Procfile's web command: gunicorn with 2 workers, stopped when the block ends."""
    port = free_port()
    # Pools sized so both workers fit next to other users of a shared server.
    env = app_env(
        database_url, PORT=str(port), WEB_CONCURRENCY="2", LOG_LEVEL="WARNING",
        DB_POOL_SIZE="10",
    )  # fmt: skip
    with running(command("web"), env, logs, "load-web") as service:
        wait_until_ready(service, port)
        yield f"http://127.0.0.1:{port}"
        assert "Traceback" not in service.stderr(), service.describe()


@dataclass
class Client:
    """One simulated user: its token, its live posts and every status it received."""

    http: httpx.AsyncClient
    number: int
    user_id: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    live: dict[int, tuple[str, str]] = field(default_factory=dict)  # id -> (title, content)
    deleted: set[int] = field(default_factory=set)
    statuses: Counter[str] = field(default_factory=Counter)
    serial: int = 0

    async def sign_up(self) -> None:
        email = f"load{self.number}-{uuid.uuid4().hex[:8]}@example.com"
        body = {"email": email, "password": PASSWORD, "full_name": "Load"}
        registered = await self.http.post("/api/v1/auth/register", json=body)
        assert registered.status_code == 201, registered.text
        self.user_id = registered.json()["id"]
        login = await self.http.post(
            "/api/v1/auth/login", data={"username": email, "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        self.headers = {"Authorization": f"Bearer {login.json()['access_token']}"}

    def text(self) -> str:
        self.serial += 1
        return f"{self.number}-{self.serial}"

    async def step(self, rng: random.Random) -> None:
        roll = rng.random()
        if not self.live or roll < 0.4:
            title, content = f"t{self.text()}", f"c{self.text()}"
            response = await self.http.post(
                POSTS, json={"title": title, "content": content}, headers=self.headers
            )
            self.statuses[f"POST {response.status_code}"] += 1
            if response.status_code == 201:
                post_id = response.json()["id"]
                assert post_id not in self.live and post_id not in self.deleted
                self.live[post_id] = (title, content)
        elif roll < 0.8:
            post_id = rng.choice(list(self.live))
            content = f"p{self.text()}"
            response = await self.http.patch(
                f"{POSTS}/{post_id}", json={"content": content}, headers=self.headers
            )
            self.statuses[f"PATCH {response.status_code}"] += 1
            if response.status_code == 200:
                self.live[post_id] = (self.live[post_id][0], content)
        else:
            post_id = rng.choice(list(self.live))
            response = await self.http.delete(f"{POSTS}/{post_id}", headers=self.headers)
            self.statuses[f"DELETE {response.status_code}"] += 1
            if response.status_code == 204:
                del self.live[post_id]
                self.deleted.add(post_id)

    async def run(self, until: float) -> None:
        rng = random.Random(self.number)
        while time.monotonic() < until:
            await self.step(rng)


def stored_posts(database_url: str) -> dict[int, tuple[int, str, str]]:
    with psycopg.connect(database_url) as connection:
        rows = connection.execute("SELECT id, owner_id, title, content FROM posts").fetchall()
    return {row[0]: (row[1], row[2], row[3]) for row in rows}


async def run_clients(base_url: str) -> tuple[list[Client], float]:
    """Sign the clients up, then let them work for DURATION_SECONDS; returns them and the time.

    One keep-alive connection per client, each in its own httpx client: one shared pool of 200
    costs httpx more CPU per request than the server spends on it.
    """
    async with contextlib.AsyncExitStack() as stack:
        clients = []
        for number in range(CLIENTS):
            http = httpx.AsyncClient(base_url=base_url, limits=ONE_CONNECTION, timeout=30)
            clients.append(Client(await stack.enter_async_context(http), number))
        signing_up = asyncio.Semaphore(20)

        async def sign_up(client: Client) -> None:
            async with signing_up:
                await client.sign_up()

        await asyncio.gather(*(sign_up(client) for client in clients))
        started = time.monotonic()
        await asyncio.gather(*(client.run(started + DURATION_SECONDS) for client in clients))
        return clients, time.monotonic() - started


async def test_200_clients_for_20_seconds_lose_nothing(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with web(database_url, tmp_path) as base_url:
        clients, elapsed = await run_clients(base_url)
    # Checked once the server has stopped: what is stored is all there will ever be.

    statuses: Counter[str] = Counter()
    for client in clients:
        statuses.update(client.statuses)
    total = statuses.total()
    server_errors = {key: n for key, n in statuses.items() if key.split()[1].startswith("5")}
    stored = stored_posts(database_url)
    expected = {
        post_id: (client.user_id, title, content)
        for client in clients
        for post_id, (title, content) in client.live.items()
    }
    deleted = {post_id for client in clients for post_id in client.deleted}
    summary = ", ".join(f"{key}: {n}" for key, n in sorted(statuses.items()))
    with capsys.disabled():
        print(
            f"\nload: {CLIENTS} clients, {total} requests in {elapsed:.1f} s "
            f"({total / elapsed:.0f}/s): {summary}; rows checked: {len(stored)} stored, "
            f"{len(expected)} expected, {len(deleted)} deleted"
        )

    assert not server_errors, summary
    assert all(key.split()[1] in {"200", "201", "204"} for key in statuses), summary
    assert total > CLIENTS, "every client got through more than one request"
    assert not deleted & set(stored), "deleted posts are gone"
    assert set(stored) == set(expected), "exactly the created, not deleted posts exist"
    assert stored == expected, "each with its owner, title and last successful content"
