"""A post's ETag covers what the post shows of its owner (`id`, `full_name`), nothing more.

It used to embed the owner's `users.updated_at` to the microsecond, which told anyone who
could read a post when its owner last changed their password. Now the owner's part of the tag
is a digest of the shown columns, computed by the database (app/core/digest.py), so a reader
learns nothing the body does not show and a cached copy stays valid until something shown
changes. If-Match compares the post's own part (its version), in the write's WHERE clause.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from httpx import AsyncClient

from tests.crud.test_etag_headers import current_tag
from tests.factories import DEFAULT_PASSWORD, TestUser, UserFactory

POSTS = "/api/v1/posts"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


async def change_password(client: AsyncClient, owner: TestUser) -> None:
    body = {"current_password": DEFAULT_PASSWORD, "new_password": "another-horse-battery"}
    response = await client.post("/api/v1/users/me/password", json=body, headers=owner.headers)
    assert response.status_code == 204, response.text


async def test_an_owner_password_change_leaves_the_tag_alone(
    client: AsyncClient, post: dict[str, Any], owner: TestUser, users: UserFactory
) -> None:
    before = await current_tag(client, post)
    await change_password(client, owner)
    assert await current_tag(client, post) == before
    # A write conditional on the tag read before the password change still goes through.
    admin = await users.create(superuser=True)
    patched = await client.patch(
        f"{POSTS}/{post['id']}",
        json={"title": "Still mine"},
        headers={**admin.headers, "If-Match": before},
    )
    assert patched.status_code == 200, patched.text


async def test_renaming_the_owner_changes_the_tag_but_not_the_posts_own_part(
    client: AsyncClient, post: dict[str, Any], owner: TestUser
) -> None:
    before = await current_tag(client, post)
    renamed = await client.patch(
        "/api/v1/users/me", json={"full_name": "Renamed"}, headers=owner.headers
    )
    assert renamed.status_code == 200, renamed.text
    after = await current_tag(client, post)
    assert after != before
    cached = await client.get(f"{POSTS}/{post['id']}", headers={"If-None-Match": before})
    assert cached.status_code == 200  # never a 304 for a stale nested owner
    assert cached.json()["owner"]["full_name"] == "Renamed"
    # The post itself did not change: a write conditional on either tag goes through.
    edited = await client.patch(
        f"{POSTS}/{post['id']}",
        json={"title": "Still current"},
        headers={**owner.headers, "If-Match": before},
    )
    assert edited.status_code == 200, edited.text
    stale = await client.patch(
        f"{POSTS}/{post['id']}",
        json={"title": "Too late"},
        headers={**owner.headers, "If-Match": after},
    )
    assert stale.status_code == 412, stale.text


async def test_the_tag_holds_no_timestamp_of_the_owner(
    client: AsyncClient, post: dict[str, Any], owner: TestUser
) -> None:
    me = (await client.get("/api/v1/users/me", headers=owner.headers)).json()
    _version, owner_part = (await current_tag(client, post)).strip('"').split(".")
    assert 0 < int(owner_part) < 2**60
    for field in ("updated_at", "created_at"):  # what the tag used to carry, in µs
        moment = datetime.fromisoformat(me[field])
        assert int(owner_part) != (moment - EPOCH) // timedelta(microseconds=1)
