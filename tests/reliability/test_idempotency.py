"""Idempotency-Key on creates: a retried POST runs once and replays the stored response.

Keys are per user and name one request (path and body) for 24 h; the key's record commits
with the row, so a create that fails leaves no key behind.
"""

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import event, func, select, update

from app.core.config import get_settings
from app.core.db import utcnow
from app.crud.idempotency import TTL, IdempotencyKey
from app.models.comment import Comment
from app.models.post import Post
from tests.conftest import IS_POSTGRES
from tests.crud.formats import assert_problem
from tests.factories import TestUser, UserFactory

POSTS = "/api/v1/posts"
COMMENTS = "/api/v1/comments"


def keyed(user: TestUser, key: str) -> dict[str, str]:
    return {**user.headers, "Idempotency-Key": key}


async def count(app: FastAPI, table: Any) -> int:
    async with app.state.engine.connect() as connection:
        return (await connection.execute(select(func.count()).select_from(table))).scalar_one()


async def key_records(app: FastAPI, key: str) -> list[int]:
    """The users holding a record for this key."""
    statement = select(IdempotencyKey.user_id).where(IdempotencyKey.key == key)
    async with app.state.engine.connect() as connection:
        return list((await connection.execute(statement)).scalars())


def assert_same_response(first: Response, retry: Response) -> None:
    assert retry.status_code == first.status_code
    for header in ("location", "etag", "content-type"):
        assert retry.headers[header] == first.headers[header], header
    assert retry.content == first.content


async def test_a_retry_replays_the_first_response_and_creates_nothing(
    app: FastAPI, client: AsyncClient, users: UserFactory
) -> None:
    owner = await users.create()
    body = {"title": "Once", "content": "only once"}
    first = await client.post(POSTS, json=body, headers=keyed(owner, "retry-1"))
    assert first.status_code == 201, first.text
    assert first.headers["location"].endswith(f"{POSTS}/{first.json()['id']}")

    for _ in range(3):
        assert_same_response(
            first, await client.post(POSTS, json=body, headers=keyed(owner, "retry-1"))
        )
    assert await count(app, Post) == 1
    assert await key_records(app, "retry-1") == [owner.id]


async def test_the_replay_is_the_stored_response_even_after_the_row_changed(
    app: FastAPI, client: AsyncClient, users: UserFactory
) -> None:
    owner = await users.create()
    first = await client.post(POSTS, json={"title": "Old"}, headers=keyed(owner, "k"))
    location = first.headers["location"]
    assert (await client.patch(location, json={"title": "New"}, headers=owner.headers)).is_success
    assert (await client.delete(location, headers=owner.headers)).status_code == 204

    retry = await client.post(POSTS, json={"title": "Old"}, headers=keyed(owner, "k"))
    assert_same_response(first, retry)
    assert await count(app, Post) == 0  # a replay never recreates


async def test_the_same_key_with_another_body_is_422(
    app: FastAPI, client: AsyncClient, users: UserFactory
) -> None:
    owner = await users.create()
    first = await client.post(POSTS, json={"title": "A"}, headers=keyed(owner, "k"))
    assert first.status_code == 201

    for body in ({"title": "B"}, {"title": "A", "published": False}):
        reused = await client.post(POSTS, json=body, headers=keyed(owner, "k"))
        problem = assert_problem(reused, 422, "idempotency-key-reused")
        assert problem["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    # Spelling the same request differently is still the same request.
    same = await client.post(
        POSTS, json={"published": True, "title": "A"}, headers=keyed(owner, "k")
    )
    assert_same_response(first, same)
    assert await count(app, Post) == 1


async def test_keys_are_scoped_per_user(
    app: FastAPI, client: AsyncClient, users: UserFactory
) -> None:
    alice, bob = await users.create(), await users.create()
    body = {"title": "Shared key"}
    for_alice = await client.post(POSTS, json=body, headers=keyed(alice, "shared"))
    for_bob = await client.post(POSTS, json=body, headers=keyed(bob, "shared"))
    assert for_alice.status_code == for_bob.status_code == 201
    assert for_alice.json()["id"] != for_bob.json()["id"]
    assert for_bob.json()["owner_id"] == bob.id
    assert await count(app, Post) == 2
    assert sorted(await key_records(app, "shared")) == sorted([alice.id, bob.id])


async def test_a_key_names_one_request_across_resources(
    app: FastAPI, client: AsyncClient, users: UserFactory
) -> None:
    """A key used on posts cannot be reused on comments: it is another request (422)."""
    owner = await users.create()
    post = await client.post(POSTS, json={"title": "P"}, headers=keyed(owner, "multi"))
    assert post.status_code == 201
    comment = {"post_id": post.json()["id"], "body": "C"}
    reused = await client.post(COMMENTS, json=comment, headers=keyed(owner, "multi"))
    assert_problem(reused, 422, "idempotency-key-reused")
    assert await count(app, Comment) == 0

    fresh = await client.post(COMMENTS, json=comment, headers=keyed(owner, "multi-2"))
    assert fresh.status_code == 201
    assert_same_response(
        fresh, await client.post(COMMENTS, json=comment, headers=keyed(owner, "multi-2"))
    )
    assert await count(app, Comment) == 1


async def test_anonymous_creates_with_a_key_are_401(app: FastAPI, client: AsyncClient) -> None:
    response = await client.post(POSTS, json={"title": "x"}, headers={"Idempotency-Key": "anon"})
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    assert await count(app, IdempotencyKey) == 0


async def test_the_longest_key_is_accepted(
    app: FastAPI, client: AsyncClient, users: UserFactory
) -> None:
    owner = await users.create()
    key = "~" * 200 + "!" * 55
    first = await client.post(POSTS, json={"title": "Long"}, headers=keyed(owner, key))
    assert first.status_code == 201
    assert_same_response(
        first, await client.post(POSTS, json={"title": "Long"}, headers=keyed(owner, key))
    )


async def test_an_expired_key_can_be_used_again(
    app: FastAPI, client: AsyncClient, users: UserFactory
) -> None:
    owner = await users.create()
    first = await client.post(POSTS, json={"title": "Day 1"}, headers=keyed(owner, "daily"))
    assert first.status_code == 201
    async with app.state.engine.begin() as connection:
        await connection.execute(
            update(IdempotencyKey).values(created_at=utcnow() - TTL - timedelta(minutes=1))
        )

    # Past 24 h the key is free: another body is a new request, and so is the same body.
    second = await client.post(POSTS, json={"title": "Day 2"}, headers=keyed(owner, "daily"))
    assert second.status_code == 201, second.text
    assert second.json()["id"] != first.json()["id"]
    # ...and it is remembered afresh, replacing the expired record.
    assert_same_response(
        second, await client.post(POSTS, json={"title": "Day 2"}, headers=keyed(owner, "daily"))
    )
    assert await count(app, Post) == 2
    assert await key_records(app, "daily") == [owner.id]


async def test_a_key_just_inside_24_hours_still_replays(
    app: FastAPI, client: AsyncClient, users: UserFactory
) -> None:
    owner = await users.create()
    first = await client.post(POSTS, json={"title": "Still"}, headers=keyed(owner, "k"))
    async with app.state.engine.begin() as connection:
        await connection.execute(
            update(IdempotencyKey).values(created_at=utcnow() - TTL + timedelta(minutes=1))
        )
    assert_same_response(
        first, await client.post(POSTS, json={"title": "Still"}, headers=keyed(owner, "k"))
    )
    assert await count(app, Post) == 1


async def test_a_failed_create_leaves_no_key_behind(
    app: FastAPI, client: AsyncClient, users: UserFactory
) -> None:
    """The key commits with the row: a create the database refuses stores nothing.

    So the key is still free, and a corrected request with it is a first request (201),
    not a reuse (422); it is remembered from then on.
    """
    author = await users.create()
    missing = {"post_id": 999_999, "body": "Orphan"}
    refused = await client.post(COMMENTS, json=missing, headers=keyed(author, "fix-me"))
    assert_problem(refused, 422, "missing-reference")
    assert await key_records(app, "fix-me") == []
    # The same failing request fails the same way: nothing was stored to replay.
    again = await client.post(COMMENTS, json=missing, headers=keyed(author, "fix-me"))
    assert_problem(again, 422, "missing-reference")

    post = await client.post(POSTS, json={"title": "Parent"}, headers=author.headers)
    corrected = {"post_id": post.json()["id"], "body": "Orphan"}
    created = await client.post(COMMENTS, json=corrected, headers=keyed(author, "fix-me"))
    assert created.status_code == 201, created.text
    assert await key_records(app, "fix-me") == [author.id]
    reused = await client.post(COMMENTS, json=missing, headers=keyed(author, "fix-me"))
    assert_problem(reused, 422, "idempotency-key-reused")
    assert await count(app, Comment) == 1


async def test_a_request_refused_before_the_database_stores_no_key(
    app: FastAPI, client: AsyncClient, users: UserFactory
) -> None:
    owner = await users.create()
    invalid = await client.post(POSTS, json={"title": ""}, headers=keyed(owner, "early"))
    assert_problem(invalid, 422)
    assert await count(app, IdempotencyKey) == 0
    assert (
        await client.post(POSTS, json={"title": "ok"}, headers=keyed(owner, "early"))
    ).status_code == 201


@pytest.mark.postgres
async def test_concurrent_duplicates_create_one_row(
    app: FastAPI, client: AsyncClient, users: UserFactory
) -> None:
    """Overlapping retries: one creates, the others get 409 in-progress or the replay."""
    owner = await users.create()
    body = {"title": "Raced"}
    statuses: dict[int, int] = {}
    for round_number in range(5):
        key = f"race-{round_number}"
        responses = await asyncio.gather(
            *(client.post(POSTS, json=body, headers=keyed(owner, key)) for _ in range(8))
        )
        created = [response for response in responses if response.status_code == 201]
        assert created, [response.text for response in responses]
        for response in responses:
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code == 201:
                assert_same_response(created[0], response)
            else:
                assert_problem(response, 409, "idempotency-in-progress")
        assert await count(app, Post) == round_number + 1
    assert set(statuses) <= {201, 409}, statuses


@asynccontextmanager
async def sqlite_write_locked() -> AsyncIterator[None]:
    """SQLite's one write lock, held by a connection of the test's own until the block ends."""
    path = get_settings().sqlalchemy_url.database
    assert path is not None
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@pytest.mark.skipif(IS_POSTGRES, reason="SQLite only: PostgreSQL's advisory lock is tested above")
async def test_overlapping_retries_on_sqlite_create_one_row(
    app: FastAPI, client: AsyncClient, users: UserFactory
) -> None:
    """Two POSTs with one key at once, each inside its transaction before the other commits.

    The test holds SQLite's write lock until both requests wait on their first write, then
    lets them go. One row, and the second gets the first's 201 (or 409 in-progress), never
    a second row or another error.
    """
    owner = await users.create()
    writers: set[int] = set()  # connections that started a write

    def note_writes(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().split(" ", 1)[0].upper() in {"INSERT", "UPDATE", "DELETE"}:
            writers.add(id(conn))

    body = {"title": "Overlapped"}
    event.listen(app.state.engine.sync_engine, "before_cursor_execute", note_writes)
    try:
        async with sqlite_write_locked():
            requests = [
                asyncio.create_task(client.post(POSTS, json=body, headers=keyed(owner, "both")))
                for _ in range(2)
            ]
            deadline = time.monotonic() + 30
            while len(writers) < 2:
                assert not any(request.done() for request in requests), [
                    request.result().text for request in requests if request.done()
                ]
                assert time.monotonic() < deadline, "the requests did not reach a write"
                await asyncio.sleep(0.01)
        responses = await asyncio.gather(*requests)
    finally:
        event.remove(app.state.engine.sync_engine, "before_cursor_execute", note_writes)

    created = [response for response in responses if response.status_code == 201]
    assert created, [response.text for response in responses]
    for response in responses:
        if response.status_code == 201:
            assert_same_response(created[0], response)
        else:
            in_progress = (409, "/problems/idempotency-in-progress")
            assert (response.status_code, response.json().get("type")) == in_progress, response.text
    assert await count(app, Post) == 1
    assert await key_records(app, "both") == [owner.id]
    retry = await client.post(POSTS, json=body, headers=keyed(owner, "both"))
    assert_same_response(created[0], retry)
