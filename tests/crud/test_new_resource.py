"""A resource declared here, with no handler code, gets the whole generated contract.

The SQLModel classes and the `Resource` are built by a module fixture: the table joins
`SQLModel.metadata` (and the registry) only while this module runs, and is dropped after.
"""

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from pydantic import ConfigDict
from sqlmodel import Field, SQLModel

from app.crud.resource import Read, Resource, Write, register, registry
from app.crud.table import Versioned
from app.main import create_app
from tests.crud.formats import assert_problem, error_locs, link_params
from tests.factories import TestUser, UserFactory

BOOKMARKS = "/api/v1/bookmarks"
TABLE = "test_bookmarks"


@dataclass
class Declared:
    resource: Resource
    table: Any


def declare_bookmarks() -> Declared:
    """What a developer writes in `app/models/bookmark.py`: classes and one declaration."""

    class BookmarkBase(SQLModel):
        url: str = Field(min_length=1, max_length=500)
        title: str = Field(min_length=1, max_length=200)
        rating: int | None = Field(default=None, ge=1, le=5)

    class Bookmark(BookmarkBase, Versioned, table=True):
        __tablename__ = TABLE

        id: int | None = Field(default=None, primary_key=True)
        url: str = Field(max_length=500, unique=True)
        owner_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)

    class BookmarkCreate(BookmarkBase):
        model_config = ConfigDict(extra="forbid")

    class BookmarkUpdate(SQLModel):
        model_config = ConfigDict(extra="forbid")

        url: str | None = Field(default=None, min_length=1, max_length=500)
        title: str | None = Field(default=None, min_length=1, max_length=200)
        rating: int | None = Field(default=None, ge=1, le=5)

    class BookmarkPublic(BookmarkBase):
        id: int
        owner_id: int
        created_at: datetime
        updated_at: datetime

    resource = register(
        Resource(
            plural="bookmarks",
            table=Bookmark,
            create=BookmarkCreate,
            update=BookmarkUpdate,
            public=BookmarkPublic,
            read=Read.OWNER,
            write=Write.OWNER,
            owner_field="owner_id",
            search_fields=("title", "url"),
            # Unindexed title and rating too: a small table, and a user lists only their own.
            sort_fields=("id", "url", "title", "rating", "created_at"),
        )
    )
    return Declared(resource, Bookmark)


@pytest.fixture(scope="module")
async def bookmarks(app: FastAPI) -> AsyncIterator[Declared]:
    declared = declare_bookmarks()
    table = declared.table.__table__
    try:
        async with app.state.engine.begin() as connection:
            await connection.run_sync(SQLModel.metadata.create_all, tables=[table])
        yield declared
    finally:
        async with app.state.engine.begin() as connection:
            await connection.run_sync(table.drop, checkfirst=True)
        SQLModel.metadata.remove(table)
        registry.remove(declared.resource)


@pytest.fixture(scope="module")
async def bookmark_app(bookmarks: Declared) -> AsyncIterator[FastAPI]:
    """A fresh app, built after the registration: it serves the new resource like any other."""
    application = create_app()
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def api(bookmark_app: FastAPI) -> AsyncIterator[AsyncClient]:
    transport = ASGITransport(app=bookmark_app)
    async with AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def alice(users: UserFactory) -> TestUser:
    return await users.create()


@pytest.fixture
async def bob(users: UserFactory) -> TestUser:
    return await users.create()


async def create(
    api: AsyncClient, owner: TestUser, url: str, title: str = "A page", **fields: Any
) -> dict[str, Any]:
    body = {"url": url, "title": title, **fields}
    response = await api.post(BOOKMARKS, json=body, headers=owner.headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def ids(response: Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


# the generated routes and their documentation


async def test_the_new_resource_is_documented_like_any_other(
    api: AsyncClient, bookmarks: Declared
) -> None:
    spec = (await api.get("/openapi.json")).json()
    operations = {
        op["operationId"]: (method, path)
        for path, item in spec["paths"].items()
        if path.startswith(BOOKMARKS)
        for method, op in item.items()
    }
    assert operations == {
        "bookmarks-list": ("get", BOOKMARKS),
        "bookmarks-create": ("post", BOOKMARKS),
        "bookmarks-get": ("get", f"{BOOKMARKS}/{{item_id}}"),
        "bookmarks-update": ("patch", f"{BOOKMARKS}/{{item_id}}"),
        "bookmarks-replace": ("put", f"{BOOKMARKS}/{{item_id}}"),
        "bookmarks-delete": ("delete", f"{BOOKMARKS}/{{item_id}}"),
        "bookmarks-create-many": ("post", f"{BOOKMARKS}/batch"),
        "bookmarks-update-many": ("patch", f"{BOOKMARKS}/batch"),
        "bookmarks-delete-many": ("delete", f"{BOOKMARKS}/batch"),
        "bookmarks-changes": ("get", f"{BOOKMARKS}/changes"),
        "bookmarks-events": ("get", f"{BOOKMARKS}/events"),
    }
    schemas = spec["components"]["schemas"]
    for name in ("BookmarkCreate", "BookmarkUpdate", "BookmarkPublic", "BookmarkList"):
        assert name in schemas
    assert set(schemas["BookmarkCreate"]["properties"]) == {"url", "title", "rating"}
    assert schemas["BookmarkCreate"]["additionalProperties"] is False
    list_params = {p["name"] for p in spec["paths"][BOOKMARKS]["get"]["parameters"]}
    assert {"limit", "offset", "cursor", "sort", "q", "rating__isnull", "url__icontains"} <= (
        list_params
    )


async def test_the_main_app_is_untouched(client: AsyncClient, bookmarks: Declared) -> None:
    assert_problem(await client.get(BOOKMARKS), 404)


# create, read, list


async def test_create_sets_the_owner_and_answers_like_a_read(
    api: AsyncClient, alice: TestUser
) -> None:
    response = await api.post(
        BOOKMARKS, json={"url": "https://a.example", "title": "A"}, headers=alice.headers
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"id", "url", "title", "rating", "owner_id", "created_at", "updated_at"}
    assert body["owner_id"] == alice.id and body["rating"] is None
    assert response.headers["location"] == f"http://testserver{BOOKMARKS}/{body['id']}"
    read = await api.get(response.headers["location"], headers=alice.headers)
    assert read.status_code == 200 and read.json() == body
    assert read.headers["etag"] == response.headers["etag"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "no url"}, "url"),
        ({"url": "", "title": "t"}, "url"),
        ({"url": "u", "title": "t", "rating": 0}, "rating"),
        ({"url": "u", "title": "t", "rating": 6}, "rating"),
        ({"url": "u", "title": "t", "owner_id": 1}, "owner_id"),
        ({"url": "u", "title": "t", "id": 5}, "id"),
        ({"url": "u", "title": "t", "version": 5}, "version"),
        ({"url": "u", "title": "t", "tags": []}, "tags"),
    ],
)
async def test_create_validates_and_refuses_unknown_fields(
    api: AsyncClient, alice: TestUser, body: dict[str, Any], field: str
) -> None:
    problem = assert_problem(await api.post(BOOKMARKS, json=body, headers=alice.headers), 422)
    assert ["body", field] in error_locs(problem)


async def test_read_owner_lists_and_reads_only_the_callers_rows(
    api: AsyncClient, users: UserFactory, alice: TestUser, bob: TestUser
) -> None:
    admin = await users.create(superuser=True)
    mine = [(await create(api, alice, f"https://alice/{i}"))["id"] for i in range(3)]
    theirs = await create(api, bob, "https://bob/1")

    listed = await api.get(BOOKMARKS, params={"sort": "id"}, headers=alice.headers)
    assert ids(listed) == mine
    assert listed.json()["total"] == 3 and listed.headers["x-total-count"] == "3"
    assert ids(await api.get(BOOKMARKS, headers=bob.headers)) == [theirs["id"]]
    everything = await api.get(BOOKMARKS, params={"sort": "id"}, headers=admin.headers)
    assert ids(everything) == [*mine, theirs["id"]]
    assert (await api.get(f"{BOOKMARKS}/{theirs['id']}", headers=admin.headers)).status_code == 200

    assert_problem(await api.get(f"{BOOKMARKS}/{theirs['id']}", headers=alice.headers), 404)
    assert_problem(await api.get(f"{BOOKMARKS}/{theirs['id'] + 1}", headers=alice.headers), 404)
    url_filter = {"url": "https://bob/1"}
    assert ids(await api.get(BOOKMARKS, params=url_filter, headers=alice.headers)) == []
    assert ids(await api.get(BOOKMARKS, params={"q": "bob"}, headers=alice.headers)) == []


async def test_anonymous_callers_get_401_everywhere(api: AsyncClient, alice: TestUser) -> None:
    item = await create(api, alice, "https://x")
    url = f"{BOOKMARKS}/{item['id']}"
    for response in (
        await api.get(BOOKMARKS),
        await api.get(url),
        await api.post(BOOKMARKS, json={"url": "u", "title": "t"}),
        await api.patch(url, json={"title": "t"}),
        await api.put(url, json={"url": "u", "title": "t"}),
        await api.delete(url),
    ):
        assert_problem(response, 401)


async def test_list_filters_sort_and_search(api: AsyncClient, alice: TestUser) -> None:
    a = await create(api, alice, "https://a/100%", "Percent", rating=5)
    b = await create(api, alice, "https://b/under_score", "Underscore", rating=2)
    c = await create(api, alice, "https://c", "Plain")
    get = lambda **params: api.get(BOOKMARKS, params=params, headers=alice.headers)  # noqa: E731
    assert ids(await get(rating__gte=2, sort="rating")) == [b["id"], a["id"]]
    assert ids(await get(rating__isnull="true")) == [c["id"]]
    assert ids(await get(q="100%")) == [a["id"]]
    assert ids(await get(q="b_u")) == []  # "_" is no wildcard: "b/u" does not match
    assert ids(await get(url__contains="_", sort="id")) == [b["id"]]
    assert ids(await get(title__icontains="PL", sort="id")) == [c["id"]]
    assert_problem(await get(owner__eq=1), 422)
    assert_problem(await get(sort="colour"), 422)


# update, replace, delete


async def test_patch_changes_only_the_fields_sent_and_accepts_null_where_nullable(
    api: AsyncClient, alice: TestUser
) -> None:
    item = await create(api, alice, "https://p", "Before", rating=4)
    url = f"{BOOKMARKS}/{item['id']}"
    response = await api.patch(url, json={"title": "After"}, headers=alice.headers)
    assert response.status_code == 200
    assert response.json()["title"] == "After" and response.json()["rating"] == 4
    response = await api.patch(url, json={"rating": None}, headers=alice.headers)
    assert response.status_code == 200 and response.json()["rating"] is None
    for body in ({"title": None}, {"url": None}, {"owner_id": 2}, {"rating": 9}):
        assert_problem(await api.patch(url, json=body, headers=alice.headers), 422)
    assert (await api.get(url, headers=alice.headers)).json() == response.json()


async def test_put_replaces_and_omitted_fields_return_to_their_defaults(
    api: AsyncClient, alice: TestUser
) -> None:
    item = await create(api, alice, "https://r", "Rated", rating=3)
    url = f"{BOOKMARKS}/{item['id']}"
    response = await api.put(url, json={"url": "https://r2", "title": "New"}, headers=alice.headers)
    assert response.status_code == 200, response.text
    assert {k: response.json()[k] for k in ("url", "title", "rating")} == {
        "url": "https://r2",
        "title": "New",
        "rating": None,
    }
    problem = assert_problem(
        await api.put(url, json={"title": "no url"}, headers=alice.headers), 422
    )
    assert ["body", "url"] in error_locs(problem)


async def test_another_users_row_is_404_for_every_write(
    api: AsyncClient, alice: TestUser, bob: TestUser
) -> None:
    theirs = await create(api, bob, "https://bob/private", "Private")
    url = f"{BOOKMARKS}/{theirs['id']}"
    tag = (await api.get(url, headers=bob.headers)).headers["etag"]
    with_tag = {**alice.headers, "If-Match": tag}
    for headers in (alice.headers, with_tag):
        assert_problem(await api.patch(url, json={"title": "mine"}, headers=headers), 404)
        body = {"url": "https://alice", "title": "mine"}
        assert_problem(await api.put(url, json=body, headers=headers), 404)
        assert_problem(await api.delete(url, headers=headers), 404)
    assert (await api.get(url, headers=bob.headers)).json() == theirs


async def test_delete_then_404(api: AsyncClient, alice: TestUser) -> None:
    item = await create(api, alice, "https://d")
    url = f"{BOOKMARKS}/{item['id']}"
    assert (await api.delete(url, headers=alice.headers)).status_code == 204
    assert_problem(await api.get(url, headers=alice.headers), 404)
    assert_problem(await api.delete(url, headers=alice.headers), 404)
    assert ids(await api.get(BOOKMARKS, headers=alice.headers)) == []


# the unique column: 409 with the field


async def test_a_duplicate_unique_value_is_409_with_the_field(
    api: AsyncClient, alice: TestUser, bob: TestUser
) -> None:
    first = await create(api, alice, "https://same")
    other = await create(api, alice, "https://other")
    duplicate = {"url": "https://same", "title": "again"}
    for user in (alice, bob):
        response = await api.post(BOOKMARKS, json=duplicate, headers=user.headers)
        problem = assert_problem(response, 409, "unique-violation")
        assert error_locs(problem) == [["body", "url"]]
    url = f"{BOOKMARKS}/{other['id']}"
    problem = assert_problem(
        await api.patch(url, json={"url": "https://same"}, headers=alice.headers), 409
    )
    assert error_locs(problem) == [["body", "url"]]
    problem = assert_problem(await api.put(url, json=duplicate, headers=alice.headers), 409)
    assert error_locs(problem) == [["body", "url"]]
    assert (await api.get(url, headers=alice.headers)).json() == other
    assert ids(await api.get(BOOKMARKS, params={"sort": "id"}, headers=alice.headers)) == [
        first["id"],
        other["id"],
    ]


# ETag and If-Match


async def test_etags_and_conditional_writes(api: AsyncClient, alice: TestUser) -> None:
    item = await create(api, alice, "https://etag")
    url = f"{BOOKMARKS}/{item['id']}"
    first = await api.get(url, headers=alice.headers)
    tag = first.headers["etag"]
    assert tag.startswith('"')
    not_modified = await api.get(url, headers={**alice.headers, "If-None-Match": tag})
    assert not_modified.status_code == 304 and not_modified.content == b""

    changed = await api.patch(url, json={"rating": 1}, headers={**alice.headers, "If-Match": tag})
    assert changed.status_code == 200
    new_tag = changed.headers["etag"]
    assert new_tag != tag
    for method, body in (
        ("PATCH", {"rating": 2}),
        ("PUT", {"url": "u", "title": "t"}),
        ("DELETE", None),
    ):
        stale = await api.request(
            method, url, json=body, headers={**alice.headers, "If-Match": tag}
        )
        assert_problem(stale, 412, "precondition-failed")
    malformed = await api.patch(url, json={"rating": 2}, headers={**alice.headers, "If-Match": "x"})
    assert_problem(malformed, 400)
    assert (await api.get(url, headers=alice.headers)).json() == changed.json()
    deleted = await api.delete(url, headers={**alice.headers, "If-Match": new_tag})
    assert deleted.status_code == 204


# a cursor walk over a nullable sort key


async def walk(api: AsyncClient, user: TestUser, **params: Any) -> list[dict[str, Any]]:
    response = await api.get(BOOKMARKS, params=params, headers=user.headers)
    assert response.status_code == 200, response.text
    items = list(response.json()["items"])
    cursor = response.json()["next_cursor"]
    while cursor is not None:
        response = await api.get(
            BOOKMARKS, params={**params, "cursor": cursor}, headers=user.headers
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["total"] is None and body["items"]
        links = link_params(response.headers.get("link"))
        assert "prev" not in links
        if body["next_cursor"] is not None:
            assert links["next"]["cursor"] == body["next_cursor"]
        items += body["items"]
        cursor = body["next_cursor"]
    return items


@pytest.mark.parametrize(
    "sort", ["rating", "-rating", "rating,-id", "-rating,title", "title,rating", "-title,-rating"]
)
async def test_a_cursor_walk_over_a_nullable_column(
    api: AsyncClient, alice: TestUser, bob: TestUser, sort: str
) -> None:
    ratings = [None, 3, None, 1, 5, 3, None, 2, 3, None, 1]
    titles = ["b", "a", "a", "c", "b", "a", "b", "c", "a", "a", "b"]
    made = [
        await create(api, alice, f"https://n/{i}", title, rating=rating)
        for i, (title, rating) in enumerate(zip(titles, ratings, strict=True))
    ]
    await create(api, bob, "https://bob/n", "a", rating=None)  # never in alice's walk

    full = await api.get(BOOKMARKS, params={"sort": sort, "limit": 100}, headers=alice.headers)
    expected = ids(full)
    assert sorted(expected) == sorted(item["id"] for item in made)
    for limit in (1, 2, 4):
        walked = [item["id"] for item in await walk(api, alice, sort=sort, limit=limit)]
        assert walked == expected, limit

    # NULL sorts as the largest value: last ascending, first descending.
    if sort.startswith(("rating", "-rating")):
        by_rating = [item["rating"] for item in full.json()["items"]]
        nulls = by_rating.count(None)
        if sort.startswith("-"):
            assert by_rating[:nulls] == [None] * nulls
            assert by_rating[nulls:] == sorted(by_rating[nulls:], reverse=True)
        else:
            assert by_rating[-nulls:] == [None] * nulls
            assert by_rating[:-nulls] == sorted(by_rating[:-nulls])


async def test_a_cursor_walk_with_a_nullable_filter(api: AsyncClient, alice: TestUser) -> None:
    for i in range(7):
        await create(api, alice, f"https://f/{i}", rating=None if i % 2 else i % 5 + 1)
    unrated = await walk(api, alice, sort="-rating", limit=2, rating__isnull="true")
    assert [item["rating"] for item in unrated] == [None] * 3
    rated = await walk(api, alice, sort="-rating", limit=2, rating__isnull="false")
    assert [item["rating"] for item in rated] == sorted(
        (item["rating"] for item in rated), reverse=True
    )
    assert len(rated) == 4


async def test_the_new_resource_has_an_admin_view(api: AsyncClient, users: UserFactory) -> None:
    """Generated from the registry like the API: no admin code for a new resource."""
    admin = await users.create(superuser=True)
    page = await api.get("/admin/login")
    token = re.search(r'name="csrftoken" value="([^"]+)"', page.text)
    assert token is not None
    form = {"username": admin.email, "password": admin.password, "csrftoken": token.group(1)}
    assert (await api.post("/admin/login", data=form)).status_code == 303
    listed = await api.get("/admin/bookmarks/list")
    assert listed.status_code == 200
    assert "Bookmarks" in listed.text
