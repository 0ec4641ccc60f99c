"""Bulk writes (`POST`, `PATCH`, `DELETE /<plural>/batch`): all or nothing, every row under
the single write's rules, refusals named by their index; the database is unchanged after
every refused request."""

import asyncio
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from app.core.config import Settings
from app.main import create_app
from tests.conftest import Serve
from tests.crud.conftest import Blog
from tests.crud.formats import assert_problem
from tests.deploy.services import serving_in_thread
from tests.factories import UserFactory
from tests.security.state import snapshot

POSTS = "/api/v1/posts/batch"
COMMENTS = "/api/v1/comments/batch"


async def test_create_many_answers_each_item_with_its_etag_in_request_order(
    client: AsyncClient, users: UserFactory
) -> None:
    alice = await users.create()
    body = [{"title": f"Post {index}", "published": index % 2 == 0} for index in range(5)]
    response = await client.post(POSTS, json=body, headers=alice.headers)
    assert response.status_code == 201, response.text
    items = response.json()["items"]
    assert [item["data"]["title"] for item in items] == [row["title"] for row in body]
    for item in items:
        assert item["data"]["owner_id"] == alice.id
        one = await client.get(f"/api/v1/posts/{item['data']['id']}", headers=alice.headers)
        assert one.json() == item["data"] and one.headers["etag"] == item["etag"]
    # each tag works as If-Match on a single write
    first = items[0]
    changed = await client.patch(
        f"/api/v1/posts/{first['data']['id']}",
        json={"title": "Edited"},
        headers={**alice.headers, "If-Match": first["etag"]},
    )
    assert changed.status_code == 200


async def test_create_many_honours_idempotency_keys(
    app: FastAPI, client: AsyncClient, users: UserFactory
) -> None:
    alice = await users.create()
    headers = {**alice.headers, "Idempotency-Key": "import-42"}
    body = [{"title": "One"}, {"title": "Two"}]
    first = await client.post(POSTS, json=body, headers=headers)
    assert first.status_code == 201
    again = await client.post(POSTS, json=body, headers=headers)
    assert again.status_code == 201 and again.json() == first.json()
    assert (await client.get("/api/v1/posts")).json()["total"] == 2
    before = await snapshot(app)
    other = await client.post(POSTS, json=[{"title": "Three"}], headers=headers)
    assert_problem(other, 422, "idempotency-key-reused")
    assert await snapshot(app) == before


async def test_a_refused_item_refuses_the_whole_request_naming_its_index(
    app: FastAPI, client: AsyncClient, users: UserFactory, blog: Blog
) -> None:
    alice, bob = await users.create(), await users.create()
    post = await blog.post(alice)
    draft = await blog.post(alice, published=False)
    before = await snapshot(app)
    missing = [{"post_id": post["id"], "body": "ok"}, {"post_id": 10**6, "body": "nowhere"}]
    problem = assert_problem(
        await client.post(COMMENTS, json=missing, headers=bob.headers), 422, "missing-reference"
    )
    assert problem["errors"][0]["loc"] == ["body", 1, "post_id"]
    # a parent the writer may not see does not exist for them
    hidden = [{"post_id": post["id"], "body": "ok"}, {"post_id": draft["id"], "body": "x"}]
    problem = assert_problem(await client.post(COMMENTS, json=hidden, headers=bob.headers), 422)
    assert problem["errors"][0]["loc"] == ["body", 1, "post_id"]
    assert await snapshot(app) == before


async def test_invalid_items_are_all_listed_in_one_answer(
    app: FastAPI, client: AsyncClient, users: UserFactory
) -> None:
    alice = await users.create()
    before = await snapshot(app)
    body = [{"title": "fine"}, {"title": ""}, {"title": "x", "colour": "red"}, {}]
    problem = assert_problem(await client.post(POSTS, json=body, headers=alice.headers), 422)
    locs = [error["loc"] for error in problem["errors"]]
    assert locs == [["body", 1, "title"], ["body", 2, "colour"], ["body", 3, "title"]]
    many = [{"title": ""}] * 150  # at most 100 listed, then the count
    problem = assert_problem(await client.post(POSTS, json=many, headers=alice.headers), 422)
    assert len(problem["errors"]) == 100 and problem["errors_total"] == 150
    for bad in ([], {"title": "not a list"}, "text"):
        assert_problem(await client.post(POSTS, json=bad, headers=alice.headers), 422)
    assert_problem(await client.post(POSTS, json=[{"title": "anonymous"}]), 401)
    assert await snapshot(app) == before


async def test_more_than_bulk_max_items_is_422_and_max_body_bytes_413(
    app: FastAPI, serve: Serve, users: UserFactory
) -> None:
    limited = await serve(create_app(Settings(BULK_MAX_ITEMS=3, MAX_BODY_BYTES=2048)))
    alice = await users.create()
    body = [{"title": f"Post {index}"} for index in range(4)]
    before = await snapshot(app)
    problem = assert_problem(await limited.post(POSTS, json=body, headers=alice.headers), 422)
    assert problem["errors"][0]["loc"] == ["body"]
    large = [{"title": "x" * 200, "content": "y" * 1000}] * 3
    assert_problem(await limited.post(POSTS, json=large, headers=alice.headers), 413)
    assert await snapshot(app) == before
    assert (await limited.post(POSTS, json=body[:3], headers=alice.headers)).status_code == 201


async def test_update_many_names_every_refused_row_and_changes_nothing(
    app: FastAPI, client: AsyncClient, users: UserFactory, blog: Blog
) -> None:
    alice, bob = await users.create(), await users.create()
    mine = [await blog.post(alice, title=f"Mine {index}") for index in range(3)]
    theirs = await blog.post(bob)
    hidden = await blog.post(bob, published=False)
    tags = {}
    for post in mine:
        tags[post["id"]] = (await client.get(f"/api/v1/posts/{post['id']}")).headers["etag"]
    stale = await client.patch(
        f"/api/v1/posts/{mine[2]['id']}", json={"title": "Moved on"}, headers=alice.headers
    )
    assert stale.status_code == 200
    before = await snapshot(app)
    body = [
        {"id": mine[0]["id"], "if_match": tags[mine[0]["id"]], "title": "A"},
        {"id": theirs["id"], "title": "B"},
        {"id": mine[2]["id"], "if_match": tags[mine[2]["id"]], "title": "C"},
        {"id": hidden["id"], "title": "D"},
        {"id": 10**6, "title": "E"},
    ]
    problem = assert_problem(await client.patch(POSTS, json=body, headers=alice.headers), 403)
    refused = {error["loc"][1]: error["type"] for error in problem["errors"]}
    assert refused == {
        1: "forbidden",
        2: "precondition-failed",
        3: "not-found",
        4: "not-found",
    }
    assert await snapshot(app) == before
    duplicate = [{"id": mine[0]["id"], "title": "A"}, {"id": mine[0]["id"], "title": "B"}]
    problem = assert_problem(await client.patch(POSTS, json=duplicate, headers=alice.headers), 422)
    assert problem["errors"][0]["loc"] == ["body", 1, "id"]
    malformed = [{"id": mine[0]["id"], "if_match": "not a tag", "title": "A"}]
    assert_problem(await client.patch(POSTS, json=malformed, headers=alice.headers), 400)
    assert await snapshot(app) == before

    voted = await client.put(f"/api/v1/posts/{mine[0]['id']}/vote", headers=bob.headers)
    assert voted.status_code == 204
    ok = [{"id": post["id"], "title": f"Renamed {post['id']}"} for post in mine]
    response = await client.patch(POSTS, json=ok, headers=alice.headers)
    assert response.status_code == 200, response.text
    for item, post in zip(response.json()["items"], mine, strict=True):
        one = await client.get(f"/api/v1/posts/{post['id']}")
        assert one.json()["title"] == f"Renamed {post['id']}" == item["data"]["title"]
        assert one.headers["etag"] == item["etag"]
    assert response.json()["items"][0]["data"]["votes"] == 1  # the counter is untouched


async def test_delete_many_takes_ids_or_tagged_ids_all_or_nothing(
    app: FastAPI, client: AsyncClient, users: UserFactory, blog: Blog
) -> None:
    alice, bob = await users.create(), await users.create()
    mine = [await blog.post(alice) for _ in range(3)]
    await blog.comment(bob, mine[0])
    theirs = await blog.post(bob)
    before = await snapshot(app)
    refused = [mine[0]["id"], {"id": theirs["id"]}, {"id": mine[1]["id"], "if_match": '"99"'}]
    problem = assert_problem(
        await client.request("DELETE", POSTS, json=refused, headers=alice.headers), 403
    )
    assert [error["loc"] for error in problem["errors"]] == [["body", 1], ["body", 2]]
    assert_problem(
        await client.request("DELETE", POSTS, json=[mine[0]["id"]] * 2, headers=alice.headers),
        422,
    )
    assert await snapshot(app) == before
    tag = (await client.get(f"/api/v1/posts/{mine[1]['id']}")).headers["etag"]
    body = [mine[0]["id"], {"id": mine[1]["id"], "if_match": tag}]
    response = await client.request("DELETE", POSTS, json=body, headers=alice.headers)
    assert response.status_code == 204 and response.content == b""
    for post in mine[:2]:
        assert_problem(await client.get(f"/api/v1/posts/{post['id']}"), 404)
    assert (await client.get(f"/api/v1/comments?post_id={mine[0]['id']}")).json()["total"] == 0
    assert (await client.get(f"/api/v1/posts/{mine[2]['id']}")).status_code == 200


async def test_two_bulk_updates_with_the_same_tags_one_wins(
    app: FastAPI, client: AsyncClient, users: UserFactory, blog: Blog
) -> None:
    alice = await users.create()
    posts = [await blog.post(alice) for _ in range(20)]
    tags = {
        post["id"]: (await client.get(f"/api/v1/posts/{post['id']}")).headers["etag"]
        for post in posts
    }

    def body(title: str) -> list[dict[str, Any]]:
        return [{"id": key, "if_match": tag, "title": title} for key, tag in tags.items()]

    first, second = await asyncio.gather(
        client.patch(POSTS, json=body("First"), headers=alice.headers),
        client.patch(POSTS, json=body("Second"), headers=alice.headers),
    )
    statuses = sorted([first.status_code, second.status_code])
    assert statuses == [200, 412], (first.text[:200], second.text[:200])
    winner = "First" if first.status_code == 200 else "Second"
    listed = (await client.get("/api/v1/posts?limit=100")).json()["items"]
    assert {item["title"] for item in listed} == {winner}


@pytest.mark.postgres
async def test_a_bulk_write_past_the_statement_timeout_is_503_and_changes_nothing(
    app: FastAPI, client: AsyncClient, serve: Serve, users: UserFactory
) -> None:
    """Each statement is quick; the transaction of 1,000 of them is not (bounded as a whole)."""
    alice = await users.create()
    created = await client.post(
        POSTS, json=[{"title": f"Post {index}"} for index in range(1000)], headers=alice.headers
    )
    assert created.status_code == 201
    ids = [item["data"]["id"] for item in created.json()["items"]]
    hurried = await serve(create_app(Settings(DB_STATEMENT_TIMEOUT_MS=50)))
    before = await snapshot(app)
    body = [{"id": item_id, "title": "Renamed"} for item_id in ids]
    response = await hurried.patch(POSTS, json=body, headers=alice.headers)
    assert_problem(response, 503, "service-unavailable")
    assert response.headers["retry-after"]
    assert await snapshot(app) == before


@pytest.fixture
def live_url(app: FastAPI) -> Iterator[str]:
    with serving_in_thread(create_app()) as url:
        yield url


async def test_a_bulk_request_cut_off_mid_body_writes_nothing(
    app: FastAPI, live_url: str, users: UserFactory
) -> None:
    """The client goes away halfway through sending 1,000 items to a live server."""
    alice = await users.create()
    body = json.dumps([{"title": f"Post {index}"} for index in range(1000)]).encode()
    before = await snapshot(app)
    url = urlsplit(live_url)
    _reader, writer = await asyncio.open_connection(url.hostname, url.port)
    head = (
        f"POST {POSTS} HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Authorization: {alice.headers['Authorization']}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body[: len(body) // 2])
    await writer.drain()
    await asyncio.sleep(0.3)
    writer.close()
    await writer.wait_closed()
    await asyncio.sleep(0.5)  # time for the server to give the request up
    assert await snapshot(app) == before
    # the server is fine, and the same body sent whole is written
    async with AsyncClient(base_url=live_url) as http:
        whole = await http.post(
            POSTS, content=body, headers={**alice.headers, "Content-Type": "application/json"}
        )
    assert whole.status_code == 201 and len(whole.json()["items"]) == 1000
