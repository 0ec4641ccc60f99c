"""Posts and comments made through the real API, for the generated-resource tests."""

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import event

from tests.factories import TestUser, UserFactory

_counter = itertools.count()


class Blog:
    """Small factories for the demo resources: each call is one real POST."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client

    async def post(self, owner: TestUser, **fields: Any) -> dict[str, Any]:
        body = {"title": f"Post {next(_counter)}", **fields}
        response = await self.client.post("/api/v1/posts", json=body, headers=owner.headers)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    async def comment(
        self, author: TestUser, post: dict[str, Any], **fields: Any
    ) -> dict[str, Any]:
        body = {"post_id": post["id"], "body": f"Comment {next(_counter)}", **fields}
        response = await self.client.post("/api/v1/comments", json=body, headers=author.headers)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]


@pytest.fixture
def blog(client: AsyncClient) -> Blog:
    return Blog(client)


@contextmanager
def counted_statements(app: FastAPI) -> Iterator[list[str]]:
    """Every statement the app sends: on the SQLAlchemy engine and on the driver path."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    def observe(sql: str, _connection: int) -> None:
        if sql != "END":
            statements.append(sql)

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    app.state.db.observers.append(observe)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)
        app.state.db.observers.remove(observe)


@pytest.fixture
async def owner(users: UserFactory) -> TestUser:
    return await users.create()


@pytest.fixture
async def post(blog: Blog, owner: TestUser) -> dict[str, Any]:
    """A published post with an owner: its tag has an embed part."""
    return await blog.post(owner, title="Tagged")
