"""Cursor (keyset) pages: complete walks for every sort, Link headers, refused cursors."""

import base64
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import update

from app.core.config import get_settings
from app.main import create_app
from app.models.post import Post
from tests.conftest import Serve
from tests.crud.conftest import Blog
from tests.crud.formats import PAGE_FIELDS, assert_problem, error_locs, link_params
from tests.factories import TestUser, UserFactory

POSTS = "/api/v1/posts"
COMMENTS = "/api/v1/comments"
TITLES = ["b", "a", "c", "a", "B", "b", "d", "a", "c", "ab", "b", "e", "a"]
SORTS = [
    "-created_at",
    "created_at",
    "-votes",
    "votes",
    "id",
    "-id",
    "votes,-id",
    "-votes,created_at",
    "-votes,-created_at",
    "created_at,-votes",
    "owner_id",
    "-owner_id,votes",
]
Headers = dict[str, str] | None


async def get_page(
    client: AsyncClient, url: str, params: dict[str, Any], headers: Headers = None
) -> Response:
    response = await client.get(url, params=params, headers=headers)
    assert response.status_code == 200, response.text
    assert set(response.json()) == set(PAGE_FIELDS)
    return response


async def walk(
    client: AsyncClient,
    url: str,
    params: dict[str, Any],
    headers: Headers = None,
    between: Callable[[], Awaitable[None]] | None = None,
) -> list[list[dict[str, Any]]]:
    """Follow `next_cursor` from the first page to the last, checking each page's format."""
    first = await get_page(client, url, params, headers)
    body = first.json()
    assert body["offset"] == 0 and body["total"] is not None
    assert first.headers["x-total-count"] == str(body["total"])
    pages = [body["items"]]
    cursor = body["next_cursor"]
    if cursor is None:
        assert body["total"] == len(body["items"])
    while cursor is not None:
        assert len(pages) < 200, "the walk does not end"
        if between is not None:
            await between()
        response = await get_page(client, url, {**params, "cursor": cursor}, headers)
        body = response.json()
        assert body["total"] is None and body["offset"] is None
        assert body["limit"] == params.get("limit", 20)
        assert "x-total-count" not in response.headers
        assert body["items"], "a next_cursor never leads to an empty page"
        assert len(body["items"]) <= body["limit"]
        links = link_params(response.headers.get("link"))
        if body["next_cursor"] is None:
            assert links == {}
        else:
            assert set(links) == {"next"}, "cursor pages link forward only"
            expected = {key: str(value) for key, value in params.items()}
            assert links["next"] == {**expected, "cursor": body["next_cursor"]}
        pages.append(body["items"])
        cursor = body["next_cursor"]
    return pages


def flat_ids(pages: list[list[dict[str, Any]]]) -> list[int]:
    return [item["id"] for page in pages for item in page]


async def offset_ids(
    client: AsyncClient, url: str, params: dict[str, Any], headers: Headers = None
) -> list[int]:
    response = await get_page(client, url, {**params, "limit": 100}, headers)
    assert response.json()["next_cursor"] is None
    return [item["id"] for item in response.json()["items"]]


@pytest.fixture
async def alice(users: UserFactory) -> TestUser:
    return await users.create()


@pytest.fixture
async def feed(
    app: FastAPI, client: AsyncClient, users: UserFactory, alice: TestUser, blog: Blog
) -> list[dict[str, Any]]:
    """13 posts with repeated titles, vote counts and creation times; two are drafts."""
    voters = [await users.create() for _ in range(3)]
    posts = []
    for index, title in enumerate(TITLES):
        post = await blog.post(alice, title=title, published=index not in (3, 9))
        posts.append(post)
        for voter in voters[: index % 4]:
            if post["published"]:
                response = await client.put(f"{POSTS}/{post['id']}/vote", headers=voter.headers)
                assert response.status_code == 204
    tie = datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
    async with app.state.engine.begin() as connection:
        ids = [posts[i]["id"] for i in (2, 5, 6, 11)]
        await connection.execute(update(Post).where(Post.id.in_(ids)).values(created_at=tie))  # type: ignore[union-attr]
    return posts


# complete walks


@pytest.mark.parametrize("sort", SORTS)
async def test_a_cursor_walk_returns_every_row_once_in_order(
    client: AsyncClient, alice: TestUser, feed: list[dict[str, Any]], sort: str
) -> None:
    for headers, expected_count in ((None, 11), (alice.headers, 13)):
        expected = await offset_ids(client, POSTS, {"sort": sort}, headers)
        assert len(expected) == expected_count
        for limit in (1, 3, 5):
            params = {"sort": sort, "limit": limit}
            walked = flat_ids(await walk(client, POSTS, params, headers))
            assert walked == expected, (limit, headers)


async def test_the_walk_follows_the_sort_keys_and_breaks_ties_by_id(
    client: AsyncClient, feed: list[dict[str, Any]]
) -> None:
    items = [
        item for page in await walk(client, POSTS, {"sort": "-votes", "limit": 2}) for item in page
    ]
    keys = [(-item["votes"], -item["id"]) for item in items]
    assert keys == sorted(keys)
    items = [
        item
        for page in await walk(client, POSTS, {"sort": "-votes,created_at", "limit": 2})
        for item in page
    ]
    # The id breaks ties in the first key's direction.
    keys = [
        (-item["votes"], datetime.fromisoformat(item["created_at"]), -item["id"]) for item in items
    ]
    assert keys == sorted(keys)
    items = [
        item
        for page in await walk(client, POSTS, {"sort": "-created_at", "limit": 2})
        for item in page
    ]
    tied = [item["id"] for item in items if item["created_at"].startswith("2030-")]
    assert len(tied) == 4
    assert tied == sorted(tied, reverse=True)
    assert items[: len(tied)] == [item for item in items if item["id"] in tied]


@pytest.mark.parametrize(
    "filters",
    [
        {"published": "true"},
        {"title__in": "a,b"},
        {"votes__gte": 1},
        {"votes": 0},
        {"q": "B"},
        {"title__startswith": "a", "published": "false"},
        {"title": "nothing-matches"},
    ],
)
async def test_a_cursor_walk_keeps_the_filters(
    client: AsyncClient, alice: TestUser, feed: list[dict[str, Any]], filters: dict[str, Any]
) -> None:
    for sort in ("-created_at", "votes,-id", "-votes,created_at"):
        params = {**filters, "sort": sort, "limit": 2}
        for headers in (None, alice.headers):
            walked = flat_ids(await walk(client, POSTS, params, headers))
            assert len(walked) == len(set(walked))
            assert walked == await offset_ids(client, POSTS, {**filters, "sort": sort}, headers)


async def test_a_page_exactly_as_long_as_the_rest_ends_the_walk(
    client: AsyncClient, alice: TestUser, blog: Blog
) -> None:
    for _ in range(4):
        await blog.post(alice)
    only = await get_page(client, POSTS, {"limit": 4})
    assert only.json()["next_cursor"] is None and only.json()["total"] == 4
    for _ in range(4):
        await blog.post(alice)
    pages = await walk(client, POSTS, {"limit": 4, "sort": "id"})
    assert [len(page) for page in pages] == [4, 4]
    empty = await get_page(client, POSTS, {"title": "none"})
    assert empty.json() == {
        "items": [],
        "total": 0,
        "total_estimated": False,
        "limit": 20,
        "offset": 0,
        "next_cursor": None,
    }


# pages, totals and links


async def test_the_first_page_reports_the_total_and_a_next_cursor(
    client: AsyncClient, alice: TestUser, feed: list[dict[str, Any]]
) -> None:
    response = await get_page(client, POSTS, {"limit": 4, "sort": "id"})
    body = response.json()
    assert body["total"] == 11 and body["offset"] == 0
    assert response.headers["x-total-count"] == "11"
    assert isinstance(body["next_cursor"], str) and body["next_cursor"]
    links = link_params(response.headers["link"])
    assert links == {"next": {"limit": "4", "sort": "id", "offset": "4"}}

    following = await get_page(
        client, POSTS, {"limit": 4, "sort": "id", "cursor": body["next_cursor"]}
    )
    assert following.json()["total"] is None
    assert following.json()["offset"] is None
    assert "x-total-count" not in following.headers
    assert "prev" not in link_params(following.headers["link"])
    by_offset = await get_page(client, POSTS, {"limit": 4, "sort": "id", "offset": 4})
    assert following.json()["items"] == by_offset.json()["items"]


async def test_offset_pages_also_carry_a_next_cursor(
    client: AsyncClient, feed: list[dict[str, Any]]
) -> None:
    middle = await get_page(client, POSTS, {"limit": 3, "offset": 3, "sort": "votes"})
    body = middle.json()
    assert body["total"] == 11 and body["offset"] == 3
    assert set(link_params(middle.headers["link"])) == {"next", "prev"}
    after = await get_page(
        client, POSTS, {"limit": 3, "sort": "votes", "cursor": body["next_cursor"]}
    )
    by_offset = await get_page(client, POSTS, {"limit": 3, "offset": 6, "sort": "votes"})
    assert after.json()["items"] == by_offset.json()["items"]
    last = await get_page(client, POSTS, {"limit": 3, "offset": 9, "sort": "votes"})
    assert len(last.json()["items"]) == 2 and last.json()["next_cursor"] is None
    past = await get_page(client, POSTS, {"limit": 3, "offset": 50})
    assert past.json()["items"] == [] and past.json()["next_cursor"] is None


async def test_the_limit_may_change_between_cursor_pages(
    client: AsyncClient, feed: list[dict[str, Any]]
) -> None:
    expected = await offset_ids(client, POSTS, {"sort": "-votes"})
    first = await get_page(client, POSTS, {"limit": 2, "sort": "-votes"})
    cursor = first.json()["next_cursor"]
    rest = await get_page(client, POSTS, {"limit": 100, "sort": "-votes", "cursor": cursor})
    assert rest.json()["next_cursor"] is None
    walked = [item["id"] for item in first.json()["items"] + rest.json()["items"]]
    assert walked == expected


# walks while the table changes


@pytest.mark.parametrize("sort", ["votes", "-votes", "id", "-created_at", "created_at"])
async def test_a_walk_while_rows_are_inserted_sees_every_existing_row_once(
    client: AsyncClient, alice: TestUser, blog: Blog, feed: list[dict[str, Any]], sort: str
) -> None:
    existing = set(await offset_ids(client, POSTS, {"sort": sort}))
    inserted: list[int] = []

    async def insert() -> None:
        if len(inserted) >= 9:  # new rows may land ahead of the cursor: keep the walk finite
            return
        for title in ("0 first", "m middle", "zz last"):
            inserted.append((await blog.post(alice, title=f"{title} {len(inserted)}"))["id"])

    walked = flat_ids(await walk(client, POSTS, {"sort": sort, "limit": 3}, between=insert))
    assert len(walked) == len(set(walked)), "a row was seen twice"
    assert existing <= set(walked), f"rows missing: {existing - set(walked)}"
    assert set(walked) <= existing | set(inserted)
    assert inserted, "rows were inserted during the walk"
    # Whatever appeared, appeared in the order the sort asks for.
    final = await offset_ids(client, POSTS, {"sort": sort})
    assert walked == [item for item in final if item in set(walked)]


async def test_a_walk_survives_the_deletion_of_the_row_it_stopped_at(
    client: AsyncClient, alice: TestUser, feed: list[dict[str, Any]]
) -> None:
    expected = await offset_ids(client, POSTS, {"sort": "-votes"})
    first = await get_page(client, POSTS, {"sort": "-votes", "limit": 4})
    last_seen = first.json()["items"][-1]["id"]
    deleted = await client.delete(f"{POSTS}/{last_seen}", headers=alice.headers)
    assert deleted.status_code == 204
    cursor = first.json()["next_cursor"]
    rest = await get_page(client, POSTS, {"sort": "-votes", "limit": 100, "cursor": cursor})
    walked = [item["id"] for item in first.json()["items"] + rest.json()["items"]]
    assert walked == expected


# refused cursors


async def first_cursor(client: AsyncClient, url: str = POSTS, **params: Any) -> str:
    body = (await get_page(client, url, {"limit": 2, **params})).json()
    assert body["next_cursor"] is not None
    return body["next_cursor"]  # type: ignore[no-any-return]


def assert_bad_cursor(response: Response) -> None:
    problem = assert_problem(response, 422)
    assert ["query", "cursor"] in error_locs(problem), problem


def tamper(cursor: str) -> list[str]:
    """Variants of a real cursor: a flipped character, changed values with the old signature."""
    padded = cursor + "=" * (-len(cursor) % 4)
    token = base64.urlsafe_b64decode(padded)
    payload, signature = token[:-12], token[-12:]
    fingerprint, values = json.loads(payload)
    changed = [0 if isinstance(value, int) else "zzz" for value in values]
    forged = json.dumps([fingerprint, changed], separators=(",", ":")).encode() + signature
    middle = len(cursor) // 2
    flipped = cursor[:middle] + ("A" if cursor[middle] != "A" else "B") + cursor[middle + 1 :]
    return [
        flipped,
        base64.urlsafe_b64encode(forged).decode().rstrip("="),
        cursor[:-2],
        cursor + "AAAA",
        cursor[::-1],
    ]


async def test_a_tampered_cursor_is_422(client: AsyncClient, feed: list[dict[str, Any]]) -> None:
    cursor = await first_cursor(client, sort="-created_at")
    for bad in tamper(cursor):
        assert_bad_cursor(
            await client.get(POSTS, params={"limit": 2, "sort": "-created_at", "cursor": bad})
        )


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "A",
        "!!!not base64!!!",
        "%%%",
        "bm90IGEgY3Vyc29y",  # "not a cursor"
        base64.urlsafe_b64encode(b"\x00" * 40).decode(),
        base64.urlsafe_b64encode(b'["x",[1]]' + b"\x00" * 12).decode(),
        "A" * 3000,
    ],
)
async def test_a_garbage_cursor_is_422(
    client: AsyncClient, feed: list[dict[str, Any]], garbage: str
) -> None:
    assert_bad_cursor(await client.get(POSTS, params={"cursor": garbage}))
    assert_bad_cursor(await client.get(COMMENTS, params={"cursor": garbage}))


@pytest.mark.parametrize(
    ("made_for", "used_for"),
    [
        ({"sort": "votes"}, {"sort": "-votes"}),
        ({"sort": "votes"}, {"sort": "votes,id"}),
        ({"sort": "-votes"}, {"sort": "-created_at"}),
        ({}, {"sort": "-created_at", "published": "true"}),
        ({"published": "true"}, {}),
        ({"published": "true"}, {"published": "false"}),
        ({"votes__gte": 0}, {"votes__gte": 1}),
        ({"title__in": "a,b"}, {"title__in": "a,c"}),
        ({"q": "a"}, {"q": "b"}),
        ({"q": "a"}, {}),
    ],
)
async def test_a_cursor_made_for_another_sort_or_filter_is_422(
    client: AsyncClient,
    alice: TestUser,
    feed: list[dict[str, Any]],
    made_for: dict[str, Any],
    used_for: dict[str, Any],
) -> None:
    response = await get_page(client, POSTS, {"limit": 1, **made_for}, alice.headers)
    cursor = response.json()["next_cursor"]
    assert cursor is not None
    replay = await client.get(POSTS, params={"limit": 1, **used_for, "cursor": cursor})
    assert_bad_cursor(replay)
    assert "another sort or filter" in replay.json()["detail"]
    same = await client.get(POSTS, params={"limit": 1, **made_for, "cursor": cursor})
    assert same.status_code == 200


@pytest.mark.parametrize("offset", [0, 5])
async def test_cursor_with_offset_is_422(
    client: AsyncClient, feed: list[dict[str, Any]], offset: int
) -> None:
    cursor = await first_cursor(client)
    response = await client.get(POSTS, params={"cursor": cursor, "offset": offset})
    problem = assert_problem(response, 422)
    assert "cursor or offset" in json.dumps(problem)


async def test_a_cursor_signed_with_another_key_is_422(
    client: AsyncClient, serve: Serve, feed: list[dict[str, Any]]
) -> None:
    settings = get_settings().model_copy(update={"SECRET_KEY": "another-secret-key-" + "x" * 40})
    other = await serve(create_app(settings))
    theirs = (await get_page(other, POSTS, {"limit": 2, "sort": "id"})).json()["next_cursor"]
    ours = await first_cursor(client, sort="id")
    assert theirs != ours
    assert_bad_cursor(await client.get(POSTS, params={"limit": 2, "sort": "id", "cursor": theirs}))
    assert_bad_cursor(await other.get(POSTS, params={"limit": 2, "sort": "id", "cursor": ours}))


async def test_a_cursor_of_one_resource_is_refused_by_another(
    client: AsyncClient, alice: TestUser, blog: Blog, feed: list[dict[str, Any]]
) -> None:
    for _ in range(3):
        await blog.comment(alice, feed[0])
    posts_cursor = await first_cursor(client, sort="id")
    comments_cursor = await first_cursor(client, COMMENTS, sort="id")
    assert_bad_cursor(
        await client.get(COMMENTS, params={"limit": 2, "sort": "id", "cursor": posts_cursor})
    )
    assert_bad_cursor(
        await client.get(POSTS, params={"limit": 2, "sort": "id", "cursor": comments_cursor})
    )


# the nested list GET /posts/{id}/comments


@pytest.mark.parametrize("sort", ["id", "-id", "author_id", "-author_id"])
async def test_a_nested_list_walks_with_cursors(
    client: AsyncClient, users: UserFactory, alice: TestUser, blog: Blog, sort: str
) -> None:
    bob = await users.create()
    post = await blog.post(alice)
    other = await blog.post(alice)
    mine = [(await blog.comment(bob if i % 3 else alice, post))["id"] for i in range(8)]
    for _ in range(3):
        await blog.comment(alice, other)
    url = f"{POSTS}/{post['id']}/comments"
    walked = flat_ids(await walk(client, url, {"sort": sort, "limit": 3}))
    assert sorted(walked) == mine
    assert walked == await offset_ids(client, url, {"sort": sort})
    by_bob = flat_ids(await walk(client, url, {"sort": sort, "limit": 2, "author_id": bob.id}))
    assert sorted(by_bob) == [mine[i] for i in range(8) if i % 3]

    cursor = await first_cursor(client, url, sort=sort)
    elsewhere = f"{POSTS}/{other['id']}/comments"
    assert_bad_cursor(
        await client.get(elsewhere, params={"limit": 2, "sort": sort, "cursor": cursor})
    )
    assert_bad_cursor(
        await client.get(COMMENTS, params={"limit": 2, "sort": sort, "cursor": cursor})
    )
    top = await first_cursor(client, COMMENTS, sort=sort)
    assert_bad_cursor(await client.get(url, params={"limit": 2, "sort": sort, "cursor": top}))


async def test_a_nested_cursor_walk_of_an_invisible_post_is_404(
    client: AsyncClient, alice: TestUser, blog: Blog
) -> None:
    draft = await blog.post(alice, published=False)
    for _ in range(3):
        await blog.comment(alice, draft)
    url = f"{POSTS}/{draft['id']}/comments"
    response = await get_page(client, url, {"limit": 2}, alice.headers)
    cursor = response.json()["next_cursor"]
    assert cursor is not None
    assert_problem(await client.get(url, params={"limit": 2, "cursor": cursor}), 404)
    owner = await client.get(url, params={"limit": 2, "cursor": cursor}, headers=alice.headers)
    assert owner.status_code == 200 and len(owner.json()["items"]) == 1
