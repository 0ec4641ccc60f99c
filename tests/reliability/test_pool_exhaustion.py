"""Pool exhaustion: past DB_POOL_TIMEOUT a request is 503 + Retry-After, then the pool recovers.

The app gets DB_POOL_SIZE=2 and DB_POOL_TIMEOUT=0.5 s. The test holds an ACCESS EXCLUSIVE lock
on `posts` from a connection of its own, and two list requests take both pooled connections
and wait on it. Any other request, on the generic layer's path or through an ORM session,
then waits DB_POOL_TIMEOUT for a connection and answers 503 "busy" (not "unreachable": the
database is up). When the lock goes, the two waiting requests finish and the very next
requests are served at once. A pool that is merely busy for less than DB_POOL_TIMEOUT is a
wait, not an error: tests/reliability/test_outage.py::test_a_busy_pool_makes_requests_wait_not_fail.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from fastapi import FastAPI
from httpx import Response
from sqlalchemy import text

from app.core.config import get_settings
from app.main import create_app
from tests.conftest import Serve
from tests.crud.formats import assert_problem
from tests.factories import UserFactory

pytestmark = pytest.mark.postgres

POSTS = "/api/v1/posts"
POOL_SIZE = 2
POOL_TIMEOUT = 0.5
GIVE_UP_SECONDS = 30
WAITING_ON_LOCKS = text(
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


@asynccontextmanager
async def posts_locked(app: FastAPI) -> AsyncIterator[None]:
    """ACCESS EXCLUSIVE on `posts` from the suite app's pool (not the one under test)."""
    async with app.state.engine.connect() as connection:
        transaction = await connection.begin()
        await connection.execute(text("LOCK TABLE posts IN ACCESS EXCLUSIVE MODE"))
        try:
            yield
        finally:
            await transaction.rollback()


async def until(condition: Callable[[], Awaitable[bool]], what: str, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def lock_waiters(app: FastAPI) -> int:
    async with app.state.engine.connect() as connection:
        waiting: int = (await connection.execute(WAITING_ON_LOCKS)).scalar_one()
    return waiting


async def has_waiters(app: FastAPI) -> bool:
    return await lock_waiters(app) == POOL_SIZE


async def timed(request: Awaitable[Response]) -> tuple[Response, float]:
    started = time.monotonic()
    async with asyncio.timeout(GIVE_UP_SECONDS):  # a broken app fails the test, never hangs it
        response = await request
    return response, time.monotonic() - started


async def test_an_exhausted_pool_is_503_after_the_pool_timeout_then_recovers(
    app: FastAPI, serve: Serve, users: UserFactory
) -> None:
    user = await users.create()
    settings = get_settings().model_copy(
        update={"DB_POOL_SIZE": POOL_SIZE, "DB_POOL_TIMEOUT": POOL_TIMEOUT}
    )
    application = create_app(settings)
    client = await serve(application)
    assert (await client.post(POSTS, json={"title": "Held"}, headers=user.headers)).is_success
    login = {"username": user.email, "password": user.password}
    others: dict[str, Callable[[], Awaitable[Response]]] = {
        "list": lambda: client.get(POSTS, params={"limit": 1}),
        "write": lambda: client.post(POSTS, json={"title": "x"}, headers=user.headers),
        "me (ORM)": lambda: client.get("/api/v1/users/me", headers=user.headers),
        "login (ORM)": lambda: client.post("/api/v1/auth/login", data=login),
    }

    async with posts_locked(app):
        holders = [asyncio.create_task(client.get(POSTS)) for _ in range(POOL_SIZE)]
        await until(lambda: has_waiters(app), f"{POOL_SIZE} requests to wait on the lock")
        for what, request in others.items():
            response, elapsed = await timed(request())
            body = assert_problem(response, 503, "service-unavailable")
            assert "busy" in body["detail"], (what, body)
            assert int(response.headers["retry-after"]) >= 1, what
            assert elapsed >= POOL_TIMEOUT * 0.9, (what, elapsed)  # it waited for the pool
        assert not any(holder.done() for holder in holders)
    held = await asyncio.wait_for(asyncio.gather(*holders), GIVE_UP_SECONDS)
    assert [response.status_code for response in held] == [200] * POOL_SIZE

    # Recovered: the first requests after the lock are served, on both paths.
    for what, request in others.items():
        response, _ = await timed(request())
        assert response.is_success, (what, response.text)
    # The write refused with 503 stored nothing.
    listing = await client.get(POSTS)
    assert [item["title"] for item in listing.json()["items"]] == ["x", "Held"]
