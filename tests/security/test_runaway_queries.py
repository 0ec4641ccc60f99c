"""Runaway queries: PostgreSQL's statement_timeout turns a stuck query into 503 + Retry-After.

A second connection holds an ACCESS EXCLUSIVE lock on a table, so every statement touching it
waits; with DB_STATEMENT_TIMEOUT_MS=300 the app gives up and answers well inside a platform
router's 30-second limit, instead of keeping the worker busy. Both ways the app runs SQL are
covered: the generic layer's statements on psycopg (posts) and ORM sessions (users).

No wall-clock limit decides these tests: a 503 that arrives while the lock is still held, says
the query took too long (SQLSTATE 57014) and leaves no statement of the app waiting on the lock
can only come from the statement timeout, however busy the machine is.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import func, select, text

from app.core.config import get_settings
from app.main import create_app
from app.models.post import Post
from tests.conftest import Serve
from tests.crud.formats import assert_problem
from tests.factories import UserFactory

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        get_settings().DB_PGBOUNCER,
        reason="behind PgBouncer the role's statement_timeout applies (docs/scaling.md)",
    ),
]

POSTS = "/api/v1/posts"
TIMEOUT_MS = 300
GIVE_UP_SECONDS = 30
WAITING_ON_LOCKS = text(
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
)
SQL_MARKERS = ("select ", "lock table", "[sql", "psycopg", "sqlalchemy", "statement_timeout")


@asynccontextmanager
async def locked(app: FastAPI, table: str) -> AsyncIterator[None]:
    """ACCESS EXCLUSIVE on `table` from a connection of its own, until the block ends."""
    async with app.state.engine.connect() as connection:
        transaction = await connection.begin()
        await connection.execute(text(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE'))
        try:
            yield
        finally:
            await transaction.rollback()


async def lock_waiters(app: FastAPI) -> int:
    """Backends of this database waiting for a lock (the test's holder never waits)."""
    async with app.state.engine.connect() as connection:
        waiting: int = (await connection.execute(WAITING_ON_LOCKS)).scalar_one()
    return waiting


async def timed(request: Awaitable[Response]) -> tuple[Response, float]:
    started = time.perf_counter()
    async with asyncio.timeout(GIVE_UP_SECONDS):  # a broken app fails the test, never hangs it
        response = await request
    return response, time.perf_counter() - started


async def assert_timed_out(app: FastAPI, response: Response, elapsed: float) -> None:
    """A statement-timeout 503, answered while the lock is held (the caller's block)."""
    body = assert_problem(response, 503, "service-unavailable")
    assert "too long" in body["detail"]  # SQLSTATE 57014: not an outage, not a busy pool
    assert int(response.headers["retry-after"]) >= 1
    # It waited for the timeout (nothing ended it sooner), and it was this app's timeout,
    # not the default one.
    assert TIMEOUT_MS / 1000 * 0.8 <= elapsed < get_settings().DB_STATEMENT_TIMEOUT_MS / 1000
    # The server cancelled the statement: nothing of the app's is still waiting on the lock.
    assert await lock_waiters(app) == 0
    seen = (response.text + str(response.headers)).lower()
    assert not [marker for marker in SQL_MARKERS if marker in seen], response.text


async def post_count(app: FastAPI) -> int:
    async with app.state.engine.connect() as connection:
        return (await connection.execute(select(func.count()).select_from(Post))).scalar_one()


@pytest.fixture
async def impatient(serve: Serve) -> AsyncClient:
    settings = get_settings().model_copy(update={"DB_STATEMENT_TIMEOUT_MS": TIMEOUT_MS})
    return await serve(create_app(settings))


async def test_a_query_stuck_behind_a_lock_is_503_then_the_app_recovers(
    app: FastAPI, impatient: AsyncClient, users: UserFactory
) -> None:
    author = await users.create()
    created = await impatient.post(POSTS, json={"title": "before"}, headers=author.headers)
    assert created.status_code == 201
    async with locked(app, "posts"):
        listing, elapsed = await timed(impatient.get(POSTS))
        await assert_timed_out(app, listing, elapsed)
        # A write stuck the same way is refused whole: nothing is stored.
        write, elapsed = await timed(
            impatient.post(POSTS, json={"title": "during"}, headers=author.headers)
        )
        await assert_timed_out(app, write, elapsed)
        # The process itself still answers.
        assert (await impatient.get("/health")).status_code == 200
    recovered = await impatient.get(POSTS)
    assert recovered.status_code == 200
    assert [item["title"] for item in recovered.json()["items"]] == ["before"]
    assert await post_count(app) == 1
    again = await impatient.post(POSTS, json={"title": "after"}, headers=author.headers)
    assert again.status_code == 201


async def test_an_orm_query_stuck_behind_a_lock_is_503_then_the_app_recovers(
    app: FastAPI, impatient: AsyncClient, users: UserFactory
) -> None:
    """The same through ORM sessions: the caller of /users/me, a login, a profile change."""
    user = await users.create()
    login = {"username": user.email, "password": user.password}
    async with locked(app, "users"):
        me, elapsed = await timed(impatient.get("/api/v1/users/me", headers=user.headers))
        await assert_timed_out(app, me, elapsed)
        signed_in, elapsed = await timed(impatient.post("/api/v1/auth/login", data=login))
        await assert_timed_out(app, signed_in, elapsed)
    me = await impatient.get("/api/v1/users/me", headers=user.headers)
    assert me.status_code == 200, me.text
    renamed = await impatient.patch(
        "/api/v1/users/me", json={"full_name": "After"}, headers=user.headers
    )
    assert renamed.status_code == 200, renamed.text
    assert (await impatient.post("/api/v1/auth/login", data=login)).status_code == 200
