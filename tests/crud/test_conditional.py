"""Conditional requests on generated resources: ETag, If-None-Match, If-Match, PUT, 405."""

import asyncio
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import select, text

from app.models.post import Post
from tests.crud.conftest import Blog
from tests.crud.formats import assert_problem, error_locs
from tests.factories import TestUser, UserFactory

POSTS = "/api/v1/posts"
COMMENTS = "/api/v1/comments"
WRITES = ["PATCH", "PUT", "DELETE"]
MALFORMED_TAGS = ["abc", '"unterminated', "W/abc", '"a"b"', '"ok", nope', 'w/"lower-case-weak"']


@pytest.fixture
async def alice(users: UserFactory) -> TestUser:
    return await users.create()


async def stored_version(app: FastAPI, post_id: int) -> int:
    async with app.state.engine.connect() as connection:
        statement = select(Post.version).where(Post.id == post_id)  # type: ignore[arg-type]
        return (await connection.execute(statement)).scalar_one()  # type: ignore[no-any-return]


async def read(
    client: AsyncClient, post_id: int, headers: dict[str, str] | None = None
) -> Response:
    response = await client.get(f"{POSTS}/{post_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response


async def etag_of(client: AsyncClient, post_id: int) -> str:
    return (await read(client, post_id)).headers["etag"]


def strong(tag: str) -> str:
    assert tag.startswith('"') and tag.endswith('"') and len(tag) > 2, tag
    return tag


async def write(
    client: AsyncClient,
    method: str,
    post_id: int,
    user: TestUser,
    if_match: str | None = None,
    body: dict[str, Any] | None = None,
) -> Response:
    """One write verb on a post; PATCH and PUT send a body that would change it."""
    headers = dict(user.headers)
    if if_match is not None:
        headers["If-Match"] = if_match
    if method == "DELETE":
        return await client.delete(f"{POSTS}/{post_id}", headers=headers)
    json = body if body is not None else {"title": f"{method} wrote this"}
    return await client.request(method, f"{POSTS}/{post_id}", json=json, headers=headers)


# ETag and If-None-Match


async def test_get_sends_a_strong_etag_and_if_none_match_answers_304(
    client: AsyncClient, alice: TestUser, blog: Blog
) -> None:
    post = await blog.post(alice)
    tag = strong(await etag_of(client, post["id"]))
    url = f"{POSTS}/{post['id']}"
    for header in (tag, "*", f'"0.0", {tag}', f"W/{tag}", f' {tag} ,"x"'):
        response = await client.get(url, headers={"If-None-Match": header})
        assert response.status_code == 304, header
        assert response.content == b""
        assert response.headers["etag"] == tag
    for header in ('"0.0"', '"something-else"', 'W/"1"'):
        response = await client.get(url, headers={"If-None-Match": header})
        assert response.status_code == 200, header
        assert response.json() == post
        assert response.headers["etag"] == tag


async def test_etag_is_the_same_for_every_reader(
    client: AsyncClient, users: UserFactory, alice: TestUser, blog: Blog
) -> None:
    bob = await users.create()
    post = await blog.post(alice)
    tag = await etag_of(client, post["id"])
    assert (await read(client, post["id"], alice.headers)).headers["etag"] == tag
    assert (await read(client, post["id"], bob.headers)).headers["etag"] == tag


async def test_if_none_match_never_hides_a_missing_or_invisible_post(
    client: AsyncClient, users: UserFactory, alice: TestUser, blog: Blog
) -> None:
    bob = await users.create()
    draft = await blog.post(alice, published=False)
    tag = (await read(client, draft["id"], alice.headers)).headers["etag"]
    for header in ("*", tag):
        hidden = {"If-None-Match": header}
        assert_problem(await client.get(f"{POSTS}/{draft['id']}", headers=hidden), 404)
        bob_hidden = {**bob.headers, **hidden}
        assert_problem(await client.get(f"{POSTS}/{draft['id']}", headers=bob_hidden), 404)
        assert_problem(await client.get(f"{POSTS}/{draft['id'] + 1}", headers=hidden), 404)
        owner = {**alice.headers, **hidden}
        assert (await client.get(f"{POSTS}/{draft['id']}", headers=owner)).status_code == 304


async def test_lists_carry_no_etag_and_ignore_if_none_match(
    client: AsyncClient, alice: TestUser, blog: Blog
) -> None:
    post = await blog.post(alice)
    tag = await etag_of(client, post["id"])
    for header in ("*", tag):
        response = await client.get(POSTS, headers={"If-None-Match": header})
        assert response.status_code == 200
        assert response.json()["items"] == [post]
        assert "etag" not in response.headers
    nested = await client.get(f"{POSTS}/{post['id']}/comments", headers={"If-None-Match": "*"})
    assert nested.status_code == 200 and nested.json()["items"] == []


async def test_create_and_update_return_the_tag_a_read_gives(
    client: AsyncClient, alice: TestUser
) -> None:
    created = await client.post(POSTS, json={"title": "First"}, headers=alice.headers)
    assert created.status_code == 201
    post_id = created.json()["id"]
    first = strong(created.headers["etag"])
    assert await etag_of(client, post_id) == first

    patched = await client.patch(
        f"{POSTS}/{post_id}", json={"title": "Second"}, headers=alice.headers
    )
    assert patched.status_code == 200
    second = strong(patched.headers["etag"])
    assert second != first
    assert await etag_of(client, post_id) == second

    replaced = await client.put(
        f"{POSTS}/{post_id}", json={"title": "Third"}, headers=alice.headers
    )
    assert replaced.status_code == 200
    third = strong(replaced.headers["etag"])
    assert third not in (first, second)
    assert await etag_of(client, post_id) == third

    stale = await client.get(f"{POSTS}/{post_id}", headers={"If-None-Match": first})
    assert stale.status_code == 200 and stale.json()["title"] == "Third"


async def test_an_update_that_changes_no_value_still_gives_a_new_tag(
    client: AsyncClient, alice: TestUser, blog: Blog
) -> None:
    post = await blog.post(alice)
    before = await etag_of(client, post["id"])
    same = {"title": post["title"]}
    response = await client.patch(f"{POSTS}/{post['id']}", json=same, headers=alice.headers)
    assert response.status_code == 200
    assert response.headers["etag"] != before
    assert response.headers["etag"] == await etag_of(client, post["id"])


async def test_the_tag_changes_with_a_vote(
    client: AsyncClient, users: UserFactory, alice: TestUser, blog: Blog
) -> None:
    bob = await users.create()
    post = await blog.post(alice)
    url = f"{POSTS}/{post['id']}"
    before = await etag_of(client, post["id"])
    assert (await client.put(f"{url}/vote", headers=bob.headers)).status_code == 204
    voted = await read(client, post["id"])
    assert voted.json()["votes"] == 1
    assert voted.headers["etag"] != before
    assert (await client.get(url, headers={"If-None-Match": before})).status_code == 200
    assert (await client.put(f"{url}/vote", headers=bob.headers)).status_code == 204
    assert await etag_of(client, post["id"]) == voted.headers["etag"]  # no new vote, same tag
    assert (await client.delete(f"{url}/vote", headers=bob.headers)).status_code == 204
    unvoted = await read(client, post["id"])
    assert unvoted.json()["votes"] == 0
    assert unvoted.headers["etag"] not in (before, voted.headers["etag"])
    stale = await write(client, "PATCH", post["id"], alice, if_match=voted.headers["etag"])
    assert_problem(stale, 412, "precondition-failed")


async def test_the_tag_changes_when_the_embedded_owner_changes(
    client: AsyncClient, alice: TestUser, blog: Blog
) -> None:
    post = await blog.post(alice)
    other = await blog.post(alice)
    before = await etag_of(client, post["id"])
    other_before = await etag_of(client, other["id"])
    renamed = await client.patch(
        "/api/v1/users/me", json={"full_name": "Alice Renamed"}, headers=alice.headers
    )
    assert renamed.status_code == 200, renamed.text
    after = await read(client, post["id"])
    assert after.json()["owner"] == {"id": alice.id, "full_name": "Alice Renamed"}
    assert after.headers["etag"] != before
    assert (
        await client.get(f"{POSTS}/{post['id']}", headers={"If-None-Match": before})
    ).status_code == 200
    # The post row itself did not change: If-Match compares its own version, so a write
    # conditional on the tag read before the rename goes through, and then the newer one is stale.
    response = await write(client, "PATCH", post["id"], alice, if_match=before)
    assert response.status_code == 200, response.text
    assert response.json()["owner"]["full_name"] == "Alice Renamed"
    stale = after.headers["etag"]
    assert_problem(await write(client, "DELETE", post["id"], alice, if_match=stale), 412)
    assert await etag_of(client, other["id"]) != other_before


# If-Match


@pytest.mark.parametrize("method", WRITES)
async def test_a_stale_if_match_is_412_and_changes_nothing(
    app: FastAPI, client: AsyncClient, alice: TestUser, blog: Blog, method: str
) -> None:
    post = await blog.post(alice, content="original")
    stale = await etag_of(client, post["id"])
    moved = await client.patch(
        f"{POSTS}/{post['id']}", json={"content": "moved on"}, headers=alice.headers
    )
    assert moved.status_code == 200
    version = await stored_version(app, post["id"])

    response = await write(client, method, post["id"], alice, if_match=stale)
    problem = assert_problem(response, 412, "precondition-failed")
    assert "etag" not in response.headers or response.headers["etag"] != stale
    assert problem["status"] == 412

    now = await read(client, post["id"])
    assert now.json() == moved.json()
    assert now.headers["etag"] == moved.headers["etag"]
    assert await stored_version(app, post["id"]) == version


@pytest.mark.parametrize("method", WRITES)
async def test_the_current_tag_lets_every_write_verb_through(
    app: FastAPI, client: AsyncClient, alice: TestUser, blog: Blog, method: str
) -> None:
    post = await blog.post(alice)
    tag = await etag_of(client, post["id"])
    response = await write(client, method, post["id"], alice, if_match=tag)
    if method == "DELETE":
        assert response.status_code == 204
        assert_problem(await client.get(f"{POSTS}/{post['id']}"), 404)
        return
    assert response.status_code == 200, response.text
    assert response.json()["title"] == f"{method} wrote this"
    assert response.headers["etag"] == await etag_of(client, post["id"])
    assert await stored_version(app, post["id"]) == 2


@pytest.mark.parametrize("method", WRITES)
async def test_if_match_star_and_lists(
    client: AsyncClient, alice: TestUser, blog: Blog, method: str
) -> None:
    # W/ is accepted: the tag names a version, and nginx's gzip weakens every tag it passes.
    for header in (
        "*",
        "{stale}, {current}",
        '"junk", {current}',
        "W/{current}",
        "W/{stale}, W/{current}",
    ):
        post = await blog.post(alice)
        stale = await etag_of(client, post["id"])
        await client.patch(f"{POSTS}/{post['id']}", json={"content": "x"}, headers=alice.headers)
        current = await etag_of(client, post["id"])
        value = header.format(stale=stale, current=current)
        response = await write(client, method, post["id"], alice, if_match=value)
        assert response.status_code == (204 if method == "DELETE" else 200), (value, response.text)


@pytest.mark.parametrize("method", WRITES)
async def test_tags_that_can_never_match_are_412(
    app: FastAPI, client: AsyncClient, alice: TestUser, blog: Blog, method: str
) -> None:
    post = await blog.post(alice)
    current = await etag_of(client, post["id"])
    opaque = current.strip('"')
    never = [
        '"junk"',
        '""',
        f'"{int(opaque.split(".")[0]) + 1}"',
        '"99999999999999999999999999.1"',
        f'"1.{"9" * 40}"',
        f'W/"{int(opaque.split(".")[0]) + 1}.0", "nope"',
    ]
    for header in never:
        response = await write(client, method, post["id"], alice, if_match=header)
        assert_problem(response, 412, "precondition-failed")
    assert await etag_of(client, post["id"]) == current
    assert await stored_version(app, post["id"]) == 1


@pytest.mark.parametrize("form", ["{version}", "{version}.0", "{version}.1.2"])
async def test_if_match_compares_the_records_own_version(
    client: AsyncClient, alice: TestUser, blog: Blog, form: str
) -> None:
    """The digests after the version are the expanded rows' (as many as the read expanded);
    a write changes the record, so only its version decides (app/crud/etag.py)."""
    post = await blog.post(alice)
    version = (await etag_of(client, post["id"])).strip('"').split(".")[0]
    tag = '"' + form.format(version=version) + '"'
    response = await write(client, "PATCH", post["id"], alice, if_match=tag)
    assert response.status_code == 200, response.text
    assert_problem(await write(client, "PATCH", post["id"], alice, if_match=tag), 412)


@pytest.mark.parametrize("method", WRITES)
@pytest.mark.parametrize("header", MALFORMED_TAGS)
async def test_a_malformed_if_match_is_400_and_changes_nothing(
    app: FastAPI, client: AsyncClient, alice: TestUser, blog: Blog, method: str, header: str
) -> None:
    post = await blog.post(alice)
    current = await etag_of(client, post["id"])
    response = await write(client, method, post["id"], alice, if_match=header)
    assert_problem(response, 400, "malformed-etag")
    assert await etag_of(client, post["id"]) == current
    assert await stored_version(app, post["id"]) == 1


@pytest.mark.parametrize("method", WRITES)
async def test_access_errors_win_over_a_failed_precondition(
    client: AsyncClient, users: UserFactory, alice: TestUser, blog: Blog, method: str
) -> None:
    bob = await users.create()
    post = await blog.post(alice)
    draft = await blog.post(alice, published=False)
    stale = '"1.1"'
    assert_problem(await write(client, method, post["id"], bob, if_match=stale), 403)
    assert_problem(await write(client, method, draft["id"], bob, if_match=stale), 404)
    assert_problem(await write(client, method, draft["id"] + 1, alice, if_match=stale), 404)
    tag = await etag_of(client, post["id"])
    assert_problem(await write(client, method, post["id"], bob, if_match=tag), 403)
    assert_problem(await write(client, method, post["id"], bob, if_match="*"), 403)
    assert await etag_of(client, post["id"]) == tag
    anonymous = await client.patch(
        f"{POSTS}/{post['id']}", json={"title": "x"}, headers={"If-Match": tag}
    )
    assert_problem(anonymous, 401)


async def test_superuser_writes_respect_if_match(
    client: AsyncClient, users: UserFactory, alice: TestUser, blog: Blog
) -> None:
    admin = await users.create(superuser=True)
    post = await blog.post(alice, published=False)
    stale = await etag_of_as(client, post["id"], alice)
    await client.patch(f"{POSTS}/{post['id']}", json={"content": "x"}, headers=alice.headers)
    assert_problem(await write(client, "PATCH", post["id"], admin, if_match=stale), 412)
    current = await etag_of_as(client, post["id"], admin)
    response = await write(client, "DELETE", post["id"], admin, if_match=current)
    assert response.status_code == 204


async def etag_of_as(client: AsyncClient, post_id: int, user: TestUser) -> str:
    return (await read(client, post_id, user.headers)).headers["etag"]


async def test_comments_take_if_match_too(
    client: AsyncClient, users: UserFactory, alice: TestUser, blog: Blog
) -> None:
    post = await blog.post(alice)
    comment = await blog.comment(alice, post)
    url = f"{COMMENTS}/{comment['id']}"
    first = await client.get(url)
    tag = strong(first.headers["etag"])
    assert (await client.get(url, headers={"If-None-Match": tag})).status_code == 304
    changed = await client.patch(
        url, json={"body": "edited"}, headers={**alice.headers, "If-Match": tag}
    )
    assert changed.status_code == 200
    assert changed.headers["etag"] != tag
    stale = await client.patch(
        url, json={"body": "lost update"}, headers={**alice.headers, "If-Match": tag}
    )
    assert_problem(stale, 412)
    assert (await client.get(url)).json()["body"] == "edited"
    gone = await client.delete(url, headers={**alice.headers, "If-Match": changed.headers["etag"]})
    assert gone.status_code == 204


# PUT: full replacement


async def test_put_replaces_the_whole_post_and_omitted_fields_return_to_defaults(
    app: FastAPI, client: AsyncClient, alice: TestUser, blog: Blog
) -> None:
    post = await blog.post(alice, content="long text", published=False)
    response = await client.put(
        f"{POSTS}/{post['id']}", json={"title": "Replaced"}, headers=alice.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["title"] == "Replaced"
    assert body["content"] == "" and body["published"] is True
    assert body["id"] == post["id"] and body["owner_id"] == alice.id
    assert body["owner"] == post["owner"] and body["votes"] == 0
    assert body["created_at"] == post["created_at"]
    assert body["updated_at"] > post["updated_at"]
    assert (await read(client, post["id"])).json() == body
    assert await stored_version(app, post["id"]) == 2

    full = {"title": "All of it", "content": "body", "published": False}
    response = await client.put(f"{POSTS}/{post['id']}", json=full, headers=alice.headers)
    assert response.status_code == 200
    assert {key: response.json()[key] for key in full} == full


async def test_put_keeps_the_vote_count(
    client: AsyncClient, users: UserFactory, alice: TestUser, blog: Blog
) -> None:
    bob = await users.create()
    post = await blog.post(alice)
    await client.put(f"{POSTS}/{post['id']}/vote", headers=bob.headers)
    response = await client.put(f"{POSTS}/{post['id']}", json={"title": "x"}, headers=alice.headers)
    assert response.status_code == 200
    assert response.json()["votes"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "title"),
        ({"content": "no title"}, "title"),
        ({"title": ""}, "title"),
        ({"title": None}, "title"),
        ({"title": "ok", "content": None}, "content"),
        ({"title": "ok", "published": None}, "published"),
        ({"title": "ok", "colour": "red"}, "colour"),
        ({"title": "ok", "id": 99}, "id"),
        ({"title": "ok", "owner_id": 1}, "owner_id"),
        ({"title": "ok", "version": 9}, "version"),
        ({"title": "ok", "votes": 100}, "votes"),
        ({"title": "ok", "created_at": "2020-01-01T00:00:00Z"}, "created_at"),
    ],
)
async def test_put_with_an_invalid_missing_or_unknown_field_is_422(
    app: FastAPI,
    client: AsyncClient,
    alice: TestUser,
    blog: Blog,
    body: dict[str, Any],
    field: str,
) -> None:
    post = await blog.post(alice)
    response = await client.put(f"{POSTS}/{post['id']}", json=body, headers=alice.headers)
    problem = assert_problem(response, 422)
    assert ["body", field] in error_locs(problem)
    assert (await read(client, post["id"])).json() == post
    assert await stored_version(app, post["id"]) == 1


async def test_put_errors_404_403_401(
    client: AsyncClient, users: UserFactory, alice: TestUser, blog: Blog
) -> None:
    bob = await users.create()
    post = await blog.post(alice)
    draft = await blog.post(alice, published=False)
    body = {"title": "Bob's now"}
    url = f"{POSTS}/{post['id']}"
    assert_problem(
        await client.put(f"{POSTS}/{draft['id'] + 1}", json=body, headers=bob.headers), 404
    )
    assert_problem(await client.put(f"{POSTS}/{draft['id']}", json=body, headers=bob.headers), 404)
    assert_problem(await client.put(url, json=body, headers=bob.headers), 403)
    anonymous = await client.put(url, json=body)
    assert_problem(anonymous, 401)
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert_problem(await client.put(f"{POSTS}/abc", json=body, headers=alice.headers), 422)
    assert (await read(client, post["id"])).json() == post


async def test_put_on_a_comment_checks_the_new_parent(
    client: AsyncClient, users: UserFactory, alice: TestUser, blog: Blog
) -> None:
    bob = await users.create()
    post = await blog.post(alice)
    other = await blog.post(alice)
    bobs_draft = await blog.post(bob, published=False)
    comment = await blog.comment(alice, post)
    url = f"{COMMENTS}/{comment['id']}"
    moved = await client.put(
        url, json={"post_id": other["id"], "body": "moved"}, headers=alice.headers
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["post_id"] == other["id"]
    for target in (bobs_draft["id"], bobs_draft["id"] + 1):
        response = await client.put(
            url, json={"post_id": target, "body": "hidden"}, headers=alice.headers
        )
        problem = assert_problem(response, 422, "missing-reference")
        assert ["body", "post_id"] in error_locs(problem)
    assert (await client.get(url)).json() == moved.json()


# 405 keeps Allow


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "/{id}", {"GET", "PATCH", "PUT", "DELETE"}),
        ("PUT", "", {"GET", "POST"}),
        ("PATCH", "", {"GET", "POST"}),
        ("DELETE", "", {"GET", "POST"}),
        ("GET", "/{id}/vote", {"PUT", "DELETE"}),
        ("POST", "/{id}/vote", {"PUT", "DELETE"}),
        ("POST", "/{id}/comments", {"GET"}),
    ],
)
async def test_405_keeps_the_allow_header(
    client: AsyncClient,
    alice: TestUser,
    blog: Blog,
    method: str,
    path: str,
    allowed: set[str],
) -> None:
    post = await blog.post(alice)
    url = POSTS + path.format(id=post["id"])
    response = await client.request(method, url, headers=alice.headers)
    assert_problem(response, 405, "method-not-allowed")
    methods = {part.strip() for part in response.headers["allow"].split(",")}
    assert allowed <= methods, methods
    assert method not in methods


# the lost-update race


async def wait_for_lock_waiters(app: FastAPI, count: int) -> int:
    """Poll PostgreSQL until `count` other sessions of this database wait on a lock."""
    statement = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
    )
    waiting = 0
    # Autocommit: inside one transaction pg_stat_activity would repeat its first snapshot.
    engine = app.state.engine.execution_options(isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        for _ in range(500):  # up to about 10 s
            waiting = (await connection.execute(statement)).scalar_one()
            if waiting >= count:
                break
            await asyncio.sleep(0.02)
    return waiting  # type: ignore[no-any-return]


@pytest.mark.postgres
async def test_concurrent_patches_with_the_same_if_match_one_wins(
    app: FastAPI, client: AsyncClient, alice: TestUser, blog: Blog
) -> None:
    """Both PATCHes are held at the row lock together, then released at once."""
    for round_ in range(4):
        post = await blog.post(alice, content="start")
        tag = await etag_of(client, post["id"])
        headers = {**alice.headers, "If-Match": tag}
        url = f"{POSTS}/{post['id']}"
        async with app.state.engine.connect() as locker:
            lock = select(Post.id).where(Post.id == post["id"]).with_for_update()  # type: ignore[arg-type]
            await locker.execute(lock)
            requests = [
                asyncio.create_task(client.patch(url, json={"content": name}, headers=headers))
                for name in (f"first {round_}", f"second {round_}")
            ]
            waiting = await wait_for_lock_waiters(app, 2)
            await locker.commit()
        responses = await asyncio.gather(*requests)
        assert waiting == 2, "both writes should have been in flight at once"
        statuses = sorted(response.status_code for response in responses)
        assert statuses == [200, 412], [r.text for r in responses]
        winner = next(r for r in responses if r.status_code == 200)
        loser = next(r for r in responses if r.status_code == 412)
        assert_problem(loser, 412, "precondition-failed")
        now = await read(client, post["id"])
        assert now.json()["content"] == winner.json()["content"]
        assert now.headers["etag"] == winner.headers["etag"]
        assert await stored_version(app, post["id"]) == 2


@pytest.mark.postgres
async def test_concurrent_patches_with_the_same_if_match_race_freely(
    app: FastAPI, client: AsyncClient, alice: TestUser, blog: Blog
) -> None:
    """Without a held lock: two requests fired together, several times."""
    for round_ in range(8):
        post = await blog.post(alice, content="start")
        headers = {**alice.headers, "If-Match": await etag_of(client, post["id"])}
        url = f"{POSTS}/{post['id']}"
        responses = await asyncio.gather(
            client.patch(url, json={"content": f"first {round_}"}, headers=headers),
            client.patch(url, json={"content": f"second {round_}"}, headers=headers),
        )
        assert sorted(r.status_code for r in responses) == [200, 412], [r.text for r in responses]
        assert await stored_version(app, post["id"]) == 2


async def test_concurrent_patches_without_if_match_all_apply(
    app: FastAPI, client: AsyncClient, alice: TestUser, blog: Blog
) -> None:
    post = await blog.post(alice)
    url = f"{POSTS}/{post['id']}"
    responses = await asyncio.gather(
        *(client.patch(url, json={"content": f"edit {i}"}, headers=alice.headers) for i in range(5))
    )
    assert [response.status_code for response in responses] == [200] * 5
    assert await stored_version(app, post["id"]) == 6
    versions_seen = {response.headers["etag"] for response in responses}
    assert len(versions_seen) == 5
