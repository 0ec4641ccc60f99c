"""`GET /<plural>/changes`: delta sync over HTTP, on both databases.

A `Replica` follows the feed the way a client does (docs/sync.md) and is compared with what
the list shows the same caller.
"""

import dataclasses
import time
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import text

from app.core.config import get_settings
from app.core.db import utcnow
from app.crud.sync.token import SyncToken
from app.models.post import posts
from app.models.tag import tags
from scripts.purge import purge
from tests.crud.conftest import Blog
from tests.crud.formats import assert_problem
from tests.factories import TestUser, UserFactory

POSTS = "/api/v1/posts"


class Replica:
    """A client's local copy of one resource, kept by following `/changes`."""

    def __init__(self, client: AsyncClient, url: str, user: TestUser | None = None) -> None:
        self.client, self.url = client, f"{url}/changes"
        self.headers = user.headers if user else {}
        self.rows: dict[int, dict[str, Any]] = {}
        self.etags: dict[int, str] = {}
        self.token: str | None = None

    async def read(self, limit: int = 100) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if self.token is not None:
            params["since"] = self.token
        response = await self.client.get(self.url, params=params, headers=self.headers)
        assert response.status_code == 200, response.text
        page: dict[str, Any] = response.json()
        for item in page["items"]:
            self.rows[item["data"]["id"]] = item["data"]
            self.etags[item["data"]["id"]] = item["etag"]
        for row_id in page["deleted"]:
            self.rows.pop(row_id, None)
            self.etags.pop(row_id, None)
        self.token = page["token"]
        return page

    async def sync(self, limit: int = 100) -> list[dict[str, Any]]:
        """Read until caught up; the pages read."""
        pages = [await self.read(limit)]
        while pages[-1]["has_more"]:
            pages.append(await self.read(limit))
        return pages

    async def assert_matches_list(self) -> None:
        listed: dict[int, dict[str, Any]] = {}
        cursor: str | None = None
        while True:
            params = {"limit": 100, "sort": "id", **({"cursor": cursor} if cursor else {})}
            response = await self.client.get(
                self.url[: -len("/changes")], params=params, headers=self.headers
            )
            assert response.status_code == 200, response.text
            body = response.json()
            listed.update((item["id"], item) for item in body["items"])
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert self.rows == listed


def changed_ids(pages: list[dict[str, Any]]) -> list[int]:
    return [item["data"]["id"] for page in pages for item in page["items"]]


async def test_first_round_pages_every_visible_row_once(
    client: AsyncClient, blog: Blog, owner: TestUser
) -> None:
    made = [await blog.post(owner, title=f"P{index}") for index in range(7)]
    await blog.post(owner, title="draft", published=False)
    replica = Replica(client, POSTS)
    pages = await replica.sync(limit=3)
    assert [page["has_more"] for page in pages] == [True, True, False]
    assert sorted(changed_ids(pages)) == [post["id"] for post in made]
    await replica.assert_matches_list()
    # Nothing changed since: an empty answer (at worst a repeat of the latest state).
    again = await replica.sync()
    assert again[-1]["has_more"] is False
    await replica.assert_matches_list()


async def test_creates_updates_and_deletes_arrive(
    client: AsyncClient, blog: Blog, owner: TestUser
) -> None:
    first, second = await blog.post(owner), await blog.post(owner)
    replica = Replica(client, POSTS)
    await replica.sync()
    third = await blog.post(owner, title="third")
    patched = await client.patch(
        f"{POSTS}/{first['id']}", json={"title": "new"}, headers=owner.headers
    )
    assert patched.status_code == 200
    assert (
        await client.delete(f"{POSTS}/{second['id']}", headers=owner.headers)
    ).status_code == 204
    pages = await replica.sync()
    assert sorted(changed_ids(pages)) == sorted([first["id"], third["id"]])
    assert pages[-1]["deleted"] == [second["id"]]
    assert replica.rows[first["id"]]["title"] == "new"
    assert replica.etags[first["id"]] == patched.headers["ETag"]
    await replica.assert_matches_list()


async def test_unpublishing_is_a_deletion_for_others_and_an_update_for_the_owner(
    client: AsyncClient, blog: Blog, owner: TestUser, users: UserFactory
) -> None:
    post = await blog.post(owner)
    anonymous, author = Replica(client, POSTS), Replica(client, POSTS, owner)
    await anonymous.sync()
    await author.sync()
    url = f"{POSTS}/{post['id']}"
    assert (await client.patch(url, json={"published": False}, headers=owner.headers)).is_success
    assert (await anonymous.sync())[-1]["deleted"] == [post["id"]]
    assert post["id"] not in anonymous.rows
    await author.sync()
    assert author.rows[post["id"]]["published"] is False
    assert (await client.patch(url, json={"published": True}, headers=owner.headers)).is_success
    await anonymous.sync()
    assert anonymous.rows[post["id"]]["published"] is True
    await author.sync()
    await anonymous.assert_matches_list()
    await author.assert_matches_list()


async def test_comments_follow_their_posts_visibility(
    client: AsyncClient, blog: Blog, owner: TestUser
) -> None:
    """A comment's visibility is its post's: unpublishing the post (a change of another
    table) turns its comments into tombstones for others."""
    post = await blog.post(owner)
    comment = await blog.comment(owner, post)
    replica = Replica(client, "/api/v1/comments")
    await replica.sync()
    assert list(replica.rows) == [comment["id"]]
    url = f"{POSTS}/{post['id']}"
    assert (await client.patch(url, json={"published": False}, headers=owner.headers)).is_success
    assert (await replica.sync())[-1]["deleted"] == [comment["id"]]
    assert (await client.patch(url, json={"published": True}, headers=owner.headers)).is_success
    await replica.sync()
    assert list(replica.rows) == [comment["id"]]
    await replica.assert_matches_list()


async def test_cascaded_deletes_leave_tombstones(
    client: AsyncClient, blog: Blog, owner: TestUser
) -> None:
    post = await blog.post(owner)
    comment = await blog.comment(owner, post)
    replica = Replica(client, "/api/v1/comments")
    await replica.sync()
    assert (await client.delete(f"{POSTS}/{post['id']}", headers=owner.headers)).status_code == 204
    assert (await replica.sync())[-1]["deleted"] == [comment["id"]]


async def test_bad_tokens_are_422(client: AsyncClient, blog: Blog, owner: TestUser) -> None:
    await blog.post(owner)
    token = (await client.get(f"{POSTS}/changes")).json()["token"]
    forged = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
    for since in ("garbage", forged, token[:20], "é" * 10):
        response = await client.get(f"{POSTS}/changes", params={"since": since})
        body = assert_problem(response, 422, "invalid-sync-token")
        assert body["errors"][0]["loc"] == ["query", "since"]
    other = await client.get("/api/v1/comments/changes", params={"since": token})
    assert "made for posts" in assert_problem(other, 422, "invalid-sync-token")["detail"]
    for limit in ("0", "1001", "x"):
        assert_problem(await client.get(f"{POSTS}/changes", params={"limit": limit}), 422)


async def test_a_token_older_than_the_retention_is_410(client: AsyncClient) -> None:
    settings = get_settings()
    days = settings.SYNC_RETENTION_DAYS
    old = SyncToken.since("posts", 1, int(time.time()) - days * 86_400 - 60)
    response = await client.get(
        f"{POSTS}/changes", params={"since": old.encode(settings.SECRET_KEY)}
    )
    assert "without `since`" in assert_problem(response, 410, "sync-expired")["detail"]
    fresh = dataclasses.replace(old, taken_at=int(time.time()) - (days - 1) * 86_400)
    ok = await client.get(f"{POSTS}/changes", params={"since": fresh.encode(settings.SECRET_KEY)})
    assert ok.status_code == 200


async def test_purge_drops_tombstones_past_the_retention(
    app: FastAPI, client: AsyncClient, blog: Blog, owner: TestUser
) -> None:
    old, recent = await blog.post(owner), await blog.post(owner)
    for post in (old, recent):
        response = await client.delete(f"{POSTS}/{post['id']}", headers=owner.headers)
        assert response.status_code == 204
    long_ago = utcnow() - timedelta(days=get_settings().SYNC_RETENTION_DAYS + 2)
    async with app.state.engine.begin() as connection:
        await connection.execute(
            text("UPDATE sync_tombstones SET deleted_at = :at WHERE row_id = :id"),
            {
                "at": long_ago.replace(tzinfo=None) if app.state.db.pool is None else long_ago,
                "id": old["id"],
            },
        )
    assert (await purge())["sync_tombstones"] == 1
    async with app.state.engine.connect() as connection:
        left = (
            (await connection.execute(text("SELECT row_id FROM sync_tombstones"))).scalars().all()
        )
    assert left == [recent["id"]]


def test_sync_false_serves_no_feed() -> None:
    from app.api.resources import VIEWERS
    from app.crud.router import ResourceRoutes

    def paths(resource: Any) -> set[str]:
        routers = ResourceRoutes(resource, VIEWERS).build()
        return {route.path for router in routers for route in router.routes}  # type: ignore[attr-defined]

    assert {"/tags/changes", "/tags/events"} <= paths(tags)
    assert not {"/tags/changes", "/tags/events"} & paths(dataclasses.replace(tags, sync=False))
    assert "/posts/changes" in paths(posts)


@pytest.mark.parametrize("operation", ["posts-changes", "posts-events", "comments-changes"])
def test_documented(spec: dict[str, Any], operation: str) -> None:
    ids = {
        op["operationId"]
        for path in spec["paths"].values()
        for op in path.values()
        if "operationId" in op
    }
    assert operation in ids
