"""The generated posts resource: every row of the CRUD contract, on posts."""

from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from app.models.post import Post
from tests.crud.conftest import Blog, counted_statements
from tests.crud.formats import assert_problem, assert_utc, error_locs
from tests.factories import UserFactory

POSTS = "/api/v1/posts"
POST_FIELDS = {
    "id",
    "title",
    "content",
    "published",
    "owner_id",
    "owner",
    "votes",
    "created_at",
    "updated_at",
}
MALFORMED_IDS = ["abc", "0", "-1", "1.5", "2147483648", "99999999999999999999"]
SERVER_MANAGED = [
    ("id", 12345),
    ("owner_id", 1),
    ("created_at", "2020-01-01T00:00:00Z"),
    ("updated_at", "2020-01-01T00:00:00Z"),
    ("version", 7),
    ("votes", 100),
]


async def stored_version(app: FastAPI, post_id: int) -> int:
    async with app.state.engine.connect() as connection:
        statement = select(Post.version).where(Post.id == post_id)  # type: ignore[arg-type]
        return (await connection.execute(statement)).scalar_one()  # type: ignore[no-any-return]


async def total_posts(client: AsyncClient) -> int:
    return (await client.get(POSTS)).json()["total"]  # type: ignore[no-any-return]


# create


async def test_create_returns_201_location_and_the_read_representation(
    client: AsyncClient, users: UserFactory
) -> None:
    alice = await users.create()
    response = await client.post(
        POSTS, json={"title": "Hello", "content": "World"}, headers=alice.headers
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == POST_FIELDS
    assert body["title"] == "Hello" and body["content"] == "World"
    assert body["published"] is True and body["votes"] == 0
    assert body["owner_id"] == alice.id
    assert body["owner"] == {"id": alice.id, "full_name": "Test User"}
    assert response.headers["location"] == f"http://testserver{POSTS}/{body['id']}"
    read = await client.get(response.headers["location"])
    assert read.status_code == 200
    assert read.json() == body


async def test_create_applies_defaults(client: AsyncClient, users: UserFactory) -> None:
    alice = await users.create()
    response = await client.post(POSTS, json={"title": "Only a title"}, headers=alice.headers)
    assert response.status_code == 201
    assert response.json()["content"] == ""
    assert response.json()["published"] is True


async def test_create_accepts_the_maximum_lengths(client: AsyncClient, users: UserFactory) -> None:
    alice = await users.create()
    body = {"title": "t" * 200, "content": "c" * 10_000}
    response = await client.post(POSTS, json=body, headers=alice.headers)
    assert response.status_code == 201, response.text
    assert len(response.json()["content"]) == 10_000


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": "t" * 201}, "title"),
        ({"title": None}, "title"),
        ({"title": 42}, "title"),
        ({"title": "ok", "content": "c" * 10_001}, "content"),
        ({"title": "ok", "content": None}, "content"),
        ({"title": "ok", "published": "maybe"}, "published"),
        ({"title": "ok", "published": None}, "published"),
        ({"title": "ok", "tags": ["x"]}, "tags"),
    ],
)
async def test_create_invalid_or_unknown_field_is_422(
    client: AsyncClient, users: UserFactory, body: dict[str, Any], field: str
) -> None:
    alice = await users.create()
    response = await client.post(POSTS, json=body, headers=alice.headers)
    problem = assert_problem(response, 422)
    assert ["body", field] in error_locs(problem)
    assert await total_posts(client) == 0


@pytest.mark.parametrize("content", [b"not json", b"[1, 2]", b'"a string"', b""])
async def test_create_with_a_body_that_is_not_an_object_is_422(
    client: AsyncClient, users: UserFactory, content: bytes
) -> None:
    alice = await users.create()
    headers = {**alice.headers, "Content-Type": "application/json"}
    response = await client.post(POSTS, content=content, headers=headers)
    assert_problem(response, 422)


@pytest.mark.parametrize(("field", "value"), SERVER_MANAGED)
async def test_create_refuses_server_managed_fields(
    client: AsyncClient, users: UserFactory, field: str, value: Any
) -> None:
    alice = await users.create()
    bob = await users.create()
    value = bob.id if field == "owner_id" else value
    response = await client.post(
        POSTS, json={"title": "Sneaky", field: value}, headers=alice.headers
    )
    problem = assert_problem(response, 422)
    assert ["body", field] in error_locs(problem)
    assert await total_posts(client) == 0


# read


async def test_get_returns_the_post(client: AsyncClient, users: UserFactory, blog: Blog) -> None:
    alice = await users.create()
    post = await blog.post(alice, title="Readable", content="Body")
    response = await client.get(f"{POSTS}/{post['id']}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == post


async def test_get_missing_post_is_404(client: AsyncClient, users: UserFactory, blog: Blog) -> None:
    alice = await users.create()
    post = await blog.post(alice)
    assert_problem(await client.get(f"{POSTS}/{post['id'] + 1}"), 404, "not-found")
    assert_problem(await client.get(f"{POSTS}/{post['id'] + 1}", headers=alice.headers), 404)


@pytest.mark.parametrize("item_id", MALFORMED_IDS)
@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_malformed_id_is_422(
    client: AsyncClient, users: UserFactory, method: str, item_id: str
) -> None:
    alice = await users.create()
    body = {"title": "x"} if method == "PATCH" else None
    response = await client.request(method, f"{POSTS}/{item_id}", json=body, headers=alice.headers)
    problem = assert_problem(response, 422)
    assert ["path", "item_id"] in error_locs(problem)


async def test_datetimes_carry_an_explicit_utc_offset(
    client: AsyncClient, users: UserFactory, blog: Blog
) -> None:
    alice = await users.create()
    post = await blog.post(alice)
    created = assert_utc(post["created_at"])
    assert assert_utc(post["updated_at"]) == created
    assert abs(datetime.now(created.tzinfo) - created) < timedelta(minutes=5)
    listed = (await client.get(POSTS)).json()["items"][0]
    assert_utc(listed["created_at"])
    assert_utc(listed["updated_at"])
    patched = await client.patch(
        f"{POSTS}/{post['id']}", json={"title": "New"}, headers=alice.headers
    )
    assert assert_utc(patched.json()["updated_at"]) >= created


# update


async def test_update_changes_only_the_fields_sent(
    client: AsyncClient, users: UserFactory, blog: Blog
) -> None:
    alice = await users.create()
    post = await blog.post(alice, title="Before", content="Kept", published=True)
    response = await client.patch(
        f"{POSTS}/{post['id']}", json={"title": "After"}, headers=alice.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["title"] == "After"
    assert body["content"] == "Kept" and body["published"] is True
    assert body["owner"] == post["owner"] and body["owner_id"] == alice.id
    assert body["created_at"] == post["created_at"]
    assert datetime.fromisoformat(body["updated_at"]) >= datetime.fromisoformat(post["updated_at"])
    assert (await client.get(f"{POSTS}/{post['id']}")).json() == body


async def test_update_with_an_empty_body_changes_nothing(
    client: AsyncClient, users: UserFactory, blog: Blog
) -> None:
    alice = await users.create()
    post = await blog.post(alice, content="Same")
    response = await client.patch(f"{POSTS}/{post['id']}", json={}, headers=alice.headers)
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("title", "content", "published")} == {
        k: post[k] for k in ("title", "content", "published")
    }


async def test_every_write_increments_the_version(
    app: FastAPI, client: AsyncClient, users: UserFactory, blog: Blog
) -> None:
    alice = await users.create()
    post = await blog.post(alice)
    assert await stored_version(app, post["id"]) == 1
    for expected, body in ((2, {"title": "a"}), (3, {"published": False}), (4, {})):
        response = await client.patch(f"{POSTS}/{post['id']}", json=body, headers=alice.headers)
        assert response.status_code == 200
        assert await stored_version(app, post["id"]) == expected


@pytest.mark.parametrize("field", ["title", "content", "published"])
async def test_update_with_explicit_null_on_a_non_nullable_field_is_422(
    client: AsyncClient, users: UserFactory, blog: Blog, field: str
) -> None:
    alice = await users.create()
    post = await blog.post(alice, content="Kept")
    response = await client.patch(
        f"{POSTS}/{post['id']}", json={field: None}, headers=alice.headers
    )
    problem = assert_problem(response, 422)
    assert ["body", field] in error_locs(problem)
    assert (await client.get(f"{POSTS}/{post['id']}")).json() == post


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "t" * 201}, "title"),
        ({"content": "c" * 10_001}, "content"),
        ({"published": "maybe"}, "published"),
        ({"tags": []}, "tags"),
    ],
)
async def test_update_invalid_or_unknown_field_is_422(
    client: AsyncClient, users: UserFactory, blog: Blog, body: dict[str, Any], field: str
) -> None:
    alice = await users.create()
    post = await blog.post(alice)
    response = await client.patch(f"{POSTS}/{post['id']}", json=body, headers=alice.headers)
    problem = assert_problem(response, 422)
    assert ["body", field] in error_locs(problem)
    assert (await client.get(f"{POSTS}/{post['id']}")).json() == post


@pytest.mark.parametrize(("field", "value"), SERVER_MANAGED)
async def test_update_refuses_server_managed_fields(
    app: FastAPI, client: AsyncClient, users: UserFactory, blog: Blog, field: str, value: Any
) -> None:
    alice = await users.create()
    bob = await users.create()
    post = await blog.post(alice)
    value = bob.id if field == "owner_id" else value
    response = await client.patch(
        f"{POSTS}/{post['id']}", json={"title": "Changed", field: value}, headers=alice.headers
    )
    problem = assert_problem(response, 422)
    assert ["body", field] in error_locs(problem)
    assert (await client.get(f"{POSTS}/{post['id']}")).json() == post
    assert await stored_version(app, post["id"]) == 1


async def test_update_missing_post_is_404(
    client: AsyncClient, users: UserFactory, blog: Blog
) -> None:
    alice = await users.create()
    post = await blog.post(alice)
    response = await client.patch(
        f"{POSTS}/{post['id'] + 1}", json={"title": "x"}, headers=alice.headers
    )
    assert_problem(response, 404, "not-found")


# delete


async def test_delete_returns_204_and_the_post_is_gone(
    client: AsyncClient, users: UserFactory, blog: Blog
) -> None:
    alice = await users.create()
    post = await blog.post(alice)
    kept = await blog.post(alice)
    response = await client.delete(f"{POSTS}/{post['id']}", headers=alice.headers)
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(await client.get(f"{POSTS}/{post['id']}"), 404)
    assert_problem(await client.delete(f"{POSTS}/{post['id']}", headers=alice.headers), 404)
    listed = (await client.get(POSTS)).json()
    assert [item["id"] for item in listed["items"]] == [kept["id"]]


# ownership: 401 anonymous, 403 non-owner, superuser passes


async def test_anonymous_writes_are_401(
    client: AsyncClient, users: UserFactory, blog: Blog
) -> None:
    alice = await users.create()
    post = await blog.post(alice)
    url = f"{POSTS}/{post['id']}"
    for response in (
        await client.post(POSTS, json={"title": "Anonymous"}),
        await client.patch(url, json={"title": "Anonymous"}),
        await client.delete(url),
    ):
        assert_problem(response, 401, "not-authenticated")
        assert response.headers["www-authenticate"] == "Bearer"
    assert (await client.get(POSTS)).json()["items"] == [post]


async def test_invalid_token_is_401_even_on_public_reads(
    client: AsyncClient, users: UserFactory, blog: Blog
) -> None:
    alice = await users.create()
    post = await blog.post(alice)
    headers = {"Authorization": "Bearer not-a-token"}
    assert_problem(await client.get(POSTS, headers=headers), 401)
    assert_problem(await client.get(f"{POSTS}/{post['id']}", headers=headers), 401)
    assert_problem(await client.post(POSTS, json={"title": "x"}, headers=headers), 401)


async def test_non_owner_writes_to_a_visible_post_are_403(
    client: AsyncClient, users: UserFactory, blog: Blog
) -> None:
    alice = await users.create()
    bob = await users.create()
    post = await blog.post(alice)
    url = f"{POSTS}/{post['id']}"
    assert_problem(await client.patch(url, json={"title": "Bob's"}, headers=bob.headers), 403)
    assert_problem(await client.delete(url, headers=bob.headers), 403)
    assert (await client.get(url)).json() == post


async def test_superuser_may_update_and_delete_any_post(
    client: AsyncClient, users: UserFactory, blog: Blog
) -> None:
    alice = await users.create()
    admin = await users.create(superuser=True)
    post = await blog.post(alice)
    url = f"{POSTS}/{post['id']}"
    response = await client.patch(url, json={"title": "Moderated"}, headers=admin.headers)
    assert response.status_code == 200
    assert response.json()["title"] == "Moderated"
    assert response.json()["owner_id"] == alice.id
    assert response.json()["owner"] == {"id": alice.id, "full_name": "Test User"}
    assert (await client.delete(url, headers=admin.headers)).status_code == 204
    assert_problem(await client.get(url), 404)


async def test_superuser_posts_are_owned_by_the_superuser(
    client: AsyncClient, users: UserFactory
) -> None:
    admin = await users.create(superuser=True)
    response = await client.post(POSTS, json={"title": "Admin's"}, headers=admin.headers)
    assert response.status_code == 201
    assert response.json()["owner"] == {"id": admin.id, "full_name": "Admin"}


# query count


async def test_listing_posts_with_owners_costs_one_statement(
    app: FastAPI, client: AsyncClient, users: UserFactory, blog: Blog
) -> None:
    async def list_posts(headers: dict[str, str] | None = None) -> tuple[list[Any], int]:
        with counted_statements(app) as statements:
            response = await client.get(POSTS, params={"limit": 20}, headers=headers)
        assert response.status_code == 200
        return response.json()["items"], len(statements)

    owners = [await users.create() for _ in range(2)]
    for owner in owners:
        await blog.post(owner)
    await list_posts()  # the pool may open a connection on the first request
    items, few = await list_posts()
    _, few_authenticated = await list_posts(owners[0].headers)
    assert len(items) == 2
    for _ in range(18):
        owners.append(await users.create())
        await blog.post(owners[-1])
    items, many = await list_posts()
    _, many_authenticated = await list_posts(owners[0].headers)
    assert len(items) == 20
    assert {item["owner"]["id"] for item in items} == {owner.id for owner in owners}
    assert few == many == 1
    assert few_authenticated == many_authenticated
