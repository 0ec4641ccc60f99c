"""The generated comments resource: CRUD rows, the parent post, nested list, cascades."""

from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select

from app.models.comment import Comment
from app.models.post import Post
from tests.crud.conftest import Blog
from tests.crud.formats import (
    assert_problem,
    assert_utc,
    error_locs,
    link_params,
    parse_links,
)
from tests.factories import UserFactory

COMMENTS = "/api/v1/comments"
POSTS = "/api/v1/posts"
COMMENT_FIELDS = {"id", "body", "post_id", "author_id", "created_at", "updated_at"}
MALFORMED_IDS = ["abc", "0", "-5", "2147483648"]


async def stored_rows(app: FastAPI, table: Any, **where: int) -> int:
    """Rows in the database itself, visible or not."""
    statement = select(func.count()).select_from(table)
    for column, value in where.items():
        statement = statement.where(getattr(table, column) == value)
    async with app.state.engine.connect() as connection:
        return (await connection.execute(statement)).scalar_one()  # type: ignore[no-any-return]


def ids(response: Any) -> list[int]:
    return [item["id"] for item in response.json()["items"]]


# create


async def test_create_returns_201_location_and_the_read_representation(
    client: AsyncClient, users: UserFactory, blog: Blog
) -> None:
    alice = await users.create()
    bob = await users.create()
    post = await blog.post(alice)
    response = await client.post(
        COMMENTS, json={"post_id": post["id"], "body": "Nice"}, headers=bob.headers
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == COMMENT_FIELDS
    assert body["body"] == "Nice"
    assert body["post_id"] == post["id"] and body["author_id"] == bob.id
    assert_utc(body["created_at"])
    assert_utc(body["updated_at"])
    assert response.headers["location"] == f"http://testserver{COMMENTS}/{body['id']}"
    read = await client.get(response.headers["location"])
    assert read.status_code == 200
    assert read.json() == body


async def test_create_accepts_the_maximum_length(
    client: AsyncClient, users: UserFactory, blog: Blog
) -> None:
    alice = await users.create()
    post = await blog.post(alice)
    comment = await blog.comment(alice, post, body="b" * 2_000)
    assert len(comment["body"]) == 2_000


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"body": "x"}, "post_id"),
        ({"body": "x", "post_id": None}, "post_id"),
        ({"body": "x", "post_id": "abc"}, "post_id"),
        ({"body": "x", "post_id": 0}, "post_id"),
        ({"post_id": "POST"}, "body"),
        ({"post_id": "POST", "body": ""}, "body"),
        ({"post_id": "POST", "body": "b" * 2_001}, "body"),
        ({"post_id": "POST", "body": None}, "body"),
        ({"post_id": "POST", "body": "x", "title": "unknown"}, "title"),
    ],
)
async def test_create_invalid_or_unknown_field_is_422(
    app: FastAPI,
    client: AsyncClient,
    users: UserFactory,
    blog: Blog,
    body: dict[str, Any],
    field: str,
) -> None:
    alice = await users.create()
    post = await blog.post(alice)
    body = {key: post["id"] if value == "POST" else value for key, value in body.items()}
    response = await client.post(COMMENTS, json=body, headers=alice.headers)
    problem = assert_problem(response, 422)
    assert ["body", field] in error_locs(problem)
    assert await stored_rows(app, Comment) == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", 999),
        ("author_id", 1),
        ("created_at", "2020-01-01T00:00:00Z"),
        ("updated_at", "2020-01-01T00:00:00Z"),
        ("version", 3),
    ],
)
async def test_create_refuses_server_managed_fields(
    app: FastAPI, client: AsyncClient, users: UserFactory, blog: Blog, field: str, value: Any
) -> None:
    alice = await users.create()
    bob = await users.create()
    post = await blog.post(alice)
    value = alice.id if field == "author_id" else value
    body = {"post_id": post["id"], "body": "Sneaky", field: value}
    response = await client.post(COMMENTS, json=body, headers=bob.headers)
    problem = assert_problem(response, 422)
    assert ["body", field] in error_locs(problem)
    assert await stored_rows(app, Comment) == 0


async def test_create_on_a_missing_post_is_422(
    app: FastAPI, client: AsyncClient, users: UserFactory, blog: Blog
) -> None:
    alice = await users.create()
    post = await blog.post(alice)
    response = await client.post(
        COMMENTS, json={"post_id": post["id"] + 1, "body": "Lost"}, headers=alice.headers
    )
    problem = assert_problem(response, 422, "missing-reference")
    assert error_locs(problem) == [["body", "post_id"]]
    assert await stored_rows(app, Comment) == 0


async def test_create_on_a_deleted_post_is_422(
    client: AsyncClient, users: UserFactory, blog: Blog
) -> None:
    alice = await users.create()
    post = await blog.post(alice)
    await client.delete(f"{POSTS}/{post['id']}", headers=alice.headers)
    response = await client.post(
        COMMENTS, json={"post_id": post["id"], "body": "Late"}, headers=alice.headers
    )
    assert_problem(response, 422, "missing-reference")


# read


async def test_get_missing_comment_is_404(
    client: AsyncClient, users: UserFactory, blog: Blog
) -> None:
    alice = await users.create()
    comment = await blog.comment(alice, await blog.post(alice))
    assert (await client.get(f"{COMMENTS}/{comment['id']}")).json() == comment
    assert_problem(await client.get(f"{COMMENTS}/{comment['id'] + 1}"), 404, "not-found")


@pytest.mark.parametrize("item_id", MALFORMED_IDS)
@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_malformed_id_is_422(
    client: AsyncClient, users: UserFactory, method: str, item_id: str
) -> None:
    alice = await users.create()
    body = {"body": "x"} if method == "PATCH" else None
    url = f"{COMMENTS}/{item_id}"
    response = await client.request(method, url, json=body, headers=alice.headers)
    problem = assert_problem(response, 422)
    assert ["path", "item_id"] in error_locs(problem)


# update and delete


async def test_update_changes_the_body_only(
    client: AsyncClient, users: UserFactory, blog: Blog
) -> None:
    alice = await users.create()
    comment = await blog.comment(alice, await blog.post(alice), body="Before")
    url = f"{COMMENTS}/{comment['id']}"
    response = await client.patch(url, json={"body": "After"}, headers=alice.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {**comment, "body": "After", "updated_at": body["updated_at"]}
    assert assert_utc(body["updated_at"]) >= assert_utc(comment["updated_at"])
    assert (await client.get(url)).json() == body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"body": None}, "body"),
        ({"body": ""}, "body"),
        ({"body": "b" * 2_001}, "body"),
        ({"id": 5}, "id"),
        ({"author_id": 1}, "author_id"),
        ({"created_at": "2020-01-01T00:00:00Z"}, "created_at"),
        ({"updated_at": "2020-01-01T00:00:00Z"}, "updated_at"),
        ({"version": 9}, "version"),
        ({"votes": 1}, "votes"),
    ],
)
async def test_update_invalid_null_or_server_managed_field_is_422(
    client: AsyncClient, users: UserFactory, blog: Blog, body: dict[str, Any], field: str
) -> None:
    alice = await users.create()
    comment = await blog.comment(alice, await blog.post(alice))
    url = f"{COMMENTS}/{comment['id']}"
    response = await client.patch(url, json={"body": "ok", **body}, headers=alice.headers)
    problem = assert_problem(response, 422)
    assert ["body", field] in error_locs(problem)
    assert (await client.get(url)).json() == comment


async def test_delete_returns_204_and_the_comment_is_gone(
    app: FastAPI, client: AsyncClient, users: UserFactory, blog: Blog
) -> None:
    alice = await users.create()
    post = await blog.post(alice)
    comment = await blog.comment(alice, post)
    kept = await blog.comment(alice, post)
    url = f"{COMMENTS}/{comment['id']}"
    response = await client.delete(url, headers=alice.headers)
    assert response.status_code == 204 and response.content == b""
    assert_problem(await client.get(url), 404)
    assert_problem(await client.delete(url, headers=alice.headers), 404)
    assert_problem(await client.patch(url, json={"body": "x"}, headers=alice.headers), 404)
    assert ids(await client.get(COMMENTS)) == [kept["id"]]
    assert await stored_rows(app, Post) == 1


async def test_anonymous_writes_are_401(
    client: AsyncClient, users: UserFactory, blog: Blog
) -> None:
    alice = await users.create()
    post = await blog.post(alice)
    comment = await blog.comment(alice, post)
    url = f"{COMMENTS}/{comment['id']}"
    for response in (
        await client.post(COMMENTS, json={"post_id": post["id"], "body": "Anonymous"}),
        await client.patch(url, json={"body": "Anonymous"}),
        await client.delete(url),
    ):
        assert_problem(response, 401, "not-authenticated")
    assert (await client.get(COMMENTS)).json()["items"] == [comment]


async def test_writes_by_anyone_but_the_author_are_403(
    client: AsyncClient, users: UserFactory, blog: Blog
) -> None:
    post_owner = await users.create()
    author = await users.create()
    stranger = await users.create()
    comment = await blog.comment(author, await blog.post(post_owner))
    url = f"{COMMENTS}/{comment['id']}"
    for user in (post_owner, stranger):
        assert_problem(await client.patch(url, json={"body": "x"}, headers=user.headers), 403)
        assert_problem(await client.delete(url, headers=user.headers), 403)
    assert (await client.get(url)).json() == comment


async def test_superuser_may_update_and_delete_any_comment(
    client: AsyncClient, users: UserFactory, blog: Blog
) -> None:
    alice = await users.create()
    admin = await users.create(superuser=True)
    comment = await blog.comment(alice, await blog.post(alice))
    url = f"{COMMENTS}/{comment['id']}"
    response = await client.patch(url, json={"body": "[removed]"}, headers=admin.headers)
    assert response.status_code == 200
    assert response.json()["author_id"] == alice.id
    assert (await client.delete(url, headers=admin.headers)).status_code == 204


# lists


async def test_comments_filter_by_post_author_and_date(
    client: AsyncClient, users: UserFactory, blog: Blog
) -> None:
    alice = await users.create()
    bob = await users.create()
    first, second, third = [await blog.post(alice) for _ in range(3)]
    c1 = await blog.comment(alice, first)
    c2 = await blog.comment(bob, first)
    c3 = await blog.comment(bob, second)
    c4 = await blog.comment(alice, third)

    async def listed(**params: Any) -> list[int]:
        response = await client.get(COMMENTS, params={"sort": "id", **params})
        assert response.status_code == 200, response.text
        assert response.headers["x-total-count"] == str(response.json()["total"])
        return ids(response)

    assert await listed() == [c1["id"], c2["id"], c3["id"], c4["id"]]
    assert await listed(post_id=first["id"]) == [c1["id"], c2["id"]]
    assert await listed(post_id__ne=first["id"]) == [c3["id"], c4["id"]]
    assert await listed(post_id__in=f"{second['id']},{third['id']}") == [c3["id"], c4["id"]]
    assert await listed(author_id=bob.id) == [c2["id"], c3["id"]]
    assert await listed(author_id=alice.id, post_id=third["id"]) == [c4["id"]]
    assert await listed(created_at__gte=c3["created_at"]) == [c3["id"], c4["id"]]
    assert await listed(created_at__lt=c3["created_at"]) == [c1["id"], c2["id"]]
    assert await listed(post_id=third["id"] + 1) == []


@pytest.mark.parametrize(
    "params",
    [
        {"post_id": "abc"},
        {"body": "x"},
        {"body__contains": "x"},
        {"post_id__contains": "1"},
        {"author_id__in": "1,x"},
        {"sort": "votes"},
        {"limit": "101"},
    ],
)
async def test_comment_list_rejects_bad_params(client: AsyncClient, params: dict[str, str]) -> None:
    assert_problem(await client.get(COMMENTS, params=params), 422)


# the nested list GET /posts/{id}/comments


async def test_nested_list_follows_the_list_contract(
    client: AsyncClient, users: UserFactory, blog: Blog
) -> None:
    alice = await users.create()
    bob = await users.create()
    post = await blog.post(alice)
    other = await blog.post(alice)
    mine = [await blog.comment(bob if i % 2 else alice, post) for i in range(5)]
    await blog.comment(alice, other)
    url = f"{POSTS}/{post['id']}/comments"

    response = await client.get(url)
    assert response.status_code == 200
    assert response.json() == {
        "items": mine,
        "total": 5,
        "total_estimated": False,
        "limit": 20,
        "offset": 0,
        "next_cursor": None,
    }
    assert response.headers["x-total-count"] == "5"

    page = await client.get(url, params={"limit": 2, "offset": 2, "sort": "-id"})
    assert ids(page) == [mine[2]["id"], mine[1]["id"]]
    assert page.json()["total"] == 5
    links = parse_links(page.headers["link"])
    assert {rel: link.path for rel, link in links.items()} == {"next": url, "prev": url}
    assert link_params(page.headers["link"]) == {
        "next": {"limit": "2", "offset": "4", "sort": "-id"},
        "prev": {"limit": "2", "offset": "0", "sort": "-id"},
    }

    by_bob = await client.get(url, params={"author_id": bob.id})
    assert ids(by_bob) == [mine[1]["id"], mine[3]["id"]]
    assert by_bob.json()["total"] == 2
    assert (await client.get(url, params={"post_id": other["id"]})).json()["total"] == 0
    assert_problem(await client.get(url, params={"limit": 101}), 422)
    assert_problem(await client.get(url, params={"nope": 1}), 422)
    assert_problem(await client.get(url, params={"sort": "votes"}), 422)


async def test_nested_list_of_a_post_without_comments_is_empty(
    client: AsyncClient, users: UserFactory, blog: Blog
) -> None:
    alice = await users.create()
    post = await blog.post(alice)
    response = await client.get(f"{POSTS}/{post['id']}/comments")
    assert response.status_code == 200
    assert response.json()["items"] == [] and response.json()["total"] == 0
    assert response.headers["x-total-count"] == "0"
    assert "link" not in response.headers


async def test_nested_list_of_a_missing_post_is_404(
    client: AsyncClient, users: UserFactory, blog: Blog
) -> None:
    alice = await users.create()
    post = await blog.post(alice)
    missing = f"{POSTS}/{post['id'] + 1}/comments"
    assert_problem(await client.get(missing), 404, "not-found")
    assert_problem(await client.get(missing, headers=alice.headers), 404)
    for bad in ("abc", "0"):
        assert_problem(await client.get(f"{POSTS}/{bad}/comments"), 422)


# cascades


async def test_deleting_a_post_deletes_its_comments(
    app: FastAPI, client: AsyncClient, users: UserFactory, blog: Blog
) -> None:
    alice = await users.create()
    bob = await users.create()
    doomed = await blog.post(alice)
    kept = await blog.post(alice)
    await blog.comment(alice, doomed)
    await blog.comment(bob, doomed)
    survivor = await blog.comment(bob, kept)
    response = await client.delete(f"{POSTS}/{doomed['id']}", headers=alice.headers)
    assert response.status_code == 204
    assert await stored_rows(app, Comment, post_id=doomed["id"]) == 0
    assert await stored_rows(app, Comment) == 1
    assert (await client.get(COMMENTS)).json()["items"] == [survivor]


async def test_deleting_a_user_deletes_their_posts_and_comments(
    app: FastAPI, client: AsyncClient, users: UserFactory, blog: Blog
) -> None:
    admin = await users.create(superuser=True)
    alice = await users.create()
    bob = await users.create()
    alice_post = await blog.post(alice)
    alice_draft = await blog.post(alice, published=False)
    bob_post = await blog.post(bob)
    await blog.comment(bob, alice_post)  # on alice's post: goes with the post
    await blog.comment(alice, bob_post)  # by alice: goes with alice
    await blog.comment(alice, alice_draft)
    bob_comment = await blog.comment(bob, bob_post)

    response = await client.delete(f"/api/v1/users/{alice.id}", headers=admin.headers)
    assert response.status_code == 204, response.text
    assert await stored_rows(app, Post, owner_id=alice.id) == 0
    assert await stored_rows(app, Comment, author_id=alice.id) == 0
    assert await stored_rows(app, Comment, post_id=alice_post["id"]) == 0
    assert ids(await client.get(POSTS, headers=admin.headers)) == [bob_post["id"]]
    assert (await client.get(COMMENTS, headers=admin.headers)).json()["items"] == [bob_comment]
