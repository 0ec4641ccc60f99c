"""Runaway queries: PostgreSQL's statement_timeout turns a stuck query into 503 + Retry-After.

A second connection holds an ACCESS EXCLUSIVE lock on `posts`, so every statement touching the
table waits; with DB_STATEMENT_TIMEOUT_MS=300 the app gives up and answers well inside a
platform router's 30-second limit, instead of keeping the worker busy.
"""

import time
from collections.abc import AsyncIterator
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

pytestmark = pytest.mark.postgres

POSTS = "/api/v1/posts"
TIMEOUT_MS = 300


@asynccontextmanager
async def posts_locked(app: FastAPI) -> AsyncIterator[None]:
    """ACCESS EXCLUSIVE on `posts` from a connection of its own, until the block ends."""
    async with app.state.engine.connect() as connection:
        transaction = await connection.begin()
        await connection.execute(text("LOCK TABLE posts IN ACCESS EXCLUSIVE MODE"))
        try:
            yield
        finally:
            await transaction.rollback()


async def timed(request: object) -> tuple[Response, float]:
    started = time.perf_counter()
    response = await request  # type: ignore[misc]
    return response, time.perf_counter() - started


def assert_timed_out(response: Response, elapsed: float) -> None:
    body = assert_problem(response, 503, "service-unavailable")
    assert "too long" in body["detail"]
    assert int(response.headers["retry-after"]) >= 1
    # It waited for the timeout, and not much longer.
    assert TIMEOUT_MS / 1000 * 0.8 <= elapsed < 1.0, elapsed


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
    async with posts_locked(app):
        listing, elapsed = await timed(impatient.get(POSTS))
        assert_timed_out(listing, elapsed)
        # A write stuck the same way is refused whole: nothing is stored.
        write, elapsed = await timed(
            impatient.post(POSTS, json={"title": "during"}, headers=author.headers)
        )
        assert_timed_out(write, elapsed)
        # The process itself still answers.
        assert (await impatient.get("/health")).status_code == 200
    recovered = await impatient.get(POSTS)
    assert recovered.status_code == 200
    assert [item["title"] for item in recovered.json()["items"]] == ["before"]
    assert await post_count(app) == 1
    again = await impatient.post(POSTS, json={"title": "after"}, headers=author.headers)
    assert again.status_code == 201
