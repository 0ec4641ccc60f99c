"""Upsert on a declared natural key: `PUT /books/by-isbn/{isbn}` and `PUT /books/batch`, and a
taken unique value in a bulk create named by its index.

`books` is declared here: an ISBN unique per book, owner-written, and a visibility rule
(unlisted books are their owner's), so a key can be held by a row the caller cannot see.
"""

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from pydantic import ConfigDict
from sqlalchemy import ColumnElement, or_
from sqlmodel import Field, SQLModel, col

from app.crud.resource import Resource, Viewer, register, registry
from app.crud.table import Versioned
from app.main import create_app
from tests.crud.formats import assert_problem
from tests.factories import UserFactory
from tests.security.state import snapshot

FORBID = ConfigDict(extra="forbid")
BOOKS = "/api/v1/books"


def declare() -> Resource:
    class Book(Versioned, table=True):
        __tablename__ = "books"
        id: int | None = Field(default=None, primary_key=True)
        isbn: str = Field(unique=True, max_length=20)
        title: str
        listed: bool = True
        owner_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)

    class BookCreate(SQLModel):
        model_config = FORBID
        isbn: str = Field(min_length=1, max_length=20)
        title: str = Field(min_length=1)
        listed: bool = True

    class BookUpdate(SQLModel):
        model_config = FORBID
        title: str | None = None
        listed: bool | None = None

    class BookPublic(SQLModel):
        id: int
        isbn: str
        title: str
        listed: bool
        owner_id: int
        created_at: datetime
        updated_at: datetime

    def listed_books(table: Any, viewer: Viewer) -> ColumnElement[bool]:
        """Unlisted books are their owner's."""
        if viewer.id is None:
            return col(table.listed).is_(True)
        return or_(col(table.listed), col(table.owner_id) == viewer.id)

    return register(
        Resource(
            table=Book,
            create=BookCreate,
            update=BookUpdate,
            public=BookPublic,
            owner_field="owner_id",
            visibility=listed_books,
            upsert_key=("isbn",),
        )
    )


@pytest.fixture(scope="module")
async def declared(app: FastAPI) -> AsyncIterator[Resource]:
    resource = declare()
    try:
        async with app.state.engine.begin() as connection:
            await connection.run_sync(SQLModel.metadata.create_all, tables=[resource.sa_table])
        yield resource
    finally:
        async with app.state.engine.begin() as connection:
            await connection.run_sync(resource.sa_table.drop, checkfirst=True)
        SQLModel.metadata.remove(resource.sa_table)
        registry.remove(resource)


@pytest.fixture(scope="module")
async def api(declared: Resource) -> AsyncIterator[AsyncClient]:
    application = create_app()
    async with LifespanManager(application):
        transport = ASGITransport(app=application)
        async with AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


@pytest.fixture(autouse=True)
async def no_books(app: FastAPI, declared: Resource) -> None:
    async with app.state.engine.begin() as connection:
        await connection.execute(declared.sa_table.delete())


def test_the_upsert_key_must_be_unique() -> None:
    class Loose(SQLModel, table=True):
        __tablename__ = "test_loose"
        id: int | None = Field(default=None, primary_key=True)
        code: str

    class LooseIn(SQLModel):
        model_config = FORBID
        code: str

    try:
        for key in (("code",), ("code", "id"), ("nope",)):
            with pytest.raises(ValueError, match="upsert_key"):
                Resource(table=Loose, create=LooseIn, update=LooseIn, public=Loose, upsert_key=key)
    finally:
        SQLModel.metadata.remove(Loose.__table__)  # type: ignore[attr-defined]


async def test_put_by_key_creates_then_replaces(
    app: FastAPI, api: AsyncClient, users: UserFactory
) -> None:
    alice = await users.create()
    url = f"{BOOKS}/by-isbn/978-0"
    created = await api.put(url, json={"title": "Dune"}, headers=alice.headers)
    assert created.status_code == 201, created.text
    book = created.json()
    assert (book["isbn"], book["title"], book["owner_id"]) == ("978-0", "Dune", alice.id)
    replaced = await api.put(url, json={"title": "Dune Messiah"}, headers=alice.headers)
    assert replaced.status_code == 200, replaced.text
    again = replaced.json()
    assert again["id"] == book["id"] and again["created_at"] == book["created_at"]
    assert again["title"] == "Dune Messiah"
    read = await api.get(f"{BOOKS}/{book['id']}")
    assert read.json() == again and read.headers["etag"] == replaced.headers["etag"]
    body = {"isbn": "978-1", "title": "Other"}  # a body naming another key than the path
    assert_problem(await api.put(url, json=body, headers=alice.headers), 422)
    assert_problem(await api.put(url, json={"title": "x"}), 401)


async def test_someone_elses_row_is_never_overwritten(
    app: FastAPI, api: AsyncClient, users: UserFactory
) -> None:
    alice, bob = await users.create(), await users.create()
    await api.put(f"{BOOKS}/by-isbn/1", json={"title": "Alice's"}, headers=alice.headers)
    await api.put(
        f"{BOOKS}/by-isbn/2", json={"title": "Hidden", "listed": False}, headers=alice.headers
    )
    before = await snapshot(app)
    visible = await api.put(f"{BOOKS}/by-isbn/1", json={"title": "Bob's"}, headers=bob.headers)
    assert_problem(visible, 403)
    hidden = await api.put(f"{BOOKS}/by-isbn/2", json={"title": "Bob's"}, headers=bob.headers)
    assert_problem(hidden, 409, "unique-violation")
    assert "Hidden" not in hidden.text
    assert await snapshot(app) == before


async def test_conditional_upserts(app: FastAPI, api: AsyncClient, users: UserFactory) -> None:
    alice = await users.create()
    url = f"{BOOKS}/by-isbn/42"
    only_new = {**alice.headers, "If-None-Match": "*"}
    first = await api.put(url, json={"title": "One"}, headers=only_new)
    assert first.status_code == 201
    assert_problem(await api.put(url, json={"title": "Two"}, headers=only_new), 412)
    tag = first.headers["etag"]
    stale = '"99"'
    assert_problem(
        await api.put(url, json={"title": "Two"}, headers={**alice.headers, "If-Match": stale}),
        412,
    )
    matched = await api.put(url, json={"title": "Two"}, headers={**alice.headers, "If-Match": tag})
    assert matched.status_code == 200 and matched.json()["title"] == "Two"
    missing = f"{BOOKS}/by-isbn/43"
    assert_problem(
        await api.put(missing, json={"title": "x"}, headers={**alice.headers, "If-Match": tag}),
        412,
    )
    assert (await api.get(f"{BOOKS}?isbn=43")).json()["total"] == 0


async def test_batch_upsert_all_or_nothing(
    app: FastAPI, api: AsyncClient, users: UserFactory
) -> None:
    alice, bob = await users.create(), await users.create()
    await api.put(f"{BOOKS}/by-isbn/b1", json={"title": "Bob's"}, headers=bob.headers)
    await api.put(f"{BOOKS}/by-isbn/a1", json={"title": "Old"}, headers=alice.headers)
    before = await snapshot(app)
    refused = [{"isbn": "a1", "title": "New"}, {"isbn": "b1", "title": "Mine now"}]
    problem = assert_problem(
        await api.put(f"{BOOKS}/batch", json=refused, headers=alice.headers), 403
    )
    assert problem["errors"][0]["loc"][:2] == ["body", 1]
    twice = [{"isbn": "a1", "title": "x"}, {"isbn": "a1", "title": "y"}]
    problem = assert_problem(
        await api.put(f"{BOOKS}/batch", json=twice, headers=alice.headers), 422
    )
    assert problem["errors"][0]["loc"] == ["body", 1, "isbn"]
    assert await snapshot(app) == before
    body = [{"isbn": "a1", "title": "New"}, {"isbn": "a2", "title": "Fresh"}]
    response = await api.put(f"{BOOKS}/batch", json=body, headers=alice.headers)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [(item["created"], item["data"]["title"]) for item in items] == [
        (False, "New"),
        (True, "Fresh"),
    ]
    for item in items:
        read = await api.get(f"{BOOKS}/{item['data']['id']}")
        assert read.headers["etag"] == item["etag"]


async def test_a_taken_unique_value_in_a_bulk_create_names_its_index(
    app: FastAPI, api: AsyncClient, users: UserFactory
) -> None:
    alice = await users.create()
    await api.put(f"{BOOKS}/by-isbn/taken", json={"title": "First"}, headers=alice.headers)
    before = await snapshot(app)
    body = [{"isbn": "new-1", "title": "A"}, {"isbn": "taken", "title": "B"}]
    problem = assert_problem(
        await api.post(f"{BOOKS}/batch", json=body, headers=alice.headers), 409
    )
    assert problem["errors"][0]["loc"][:2] == ["body", 1]
    within = [{"isbn": "same", "title": "A"}, {"isbn": "same", "title": "B"}]
    problem = assert_problem(
        await api.post(f"{BOOKS}/batch", json=within, headers=alice.headers), 409
    )
    assert problem["errors"][0]["loc"][:2] == ["body", 1]
    assert await snapshot(app) == before
