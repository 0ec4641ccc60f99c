"""Votes on posts: `PUT`/`DELETE /posts/{id}/vote`, the `votes` counter and its cascades."""

import asyncio

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select

from app.models.post import Post, PostVote
from tests.crud.conftest import Blog
from tests.crud.formats import assert_problem
from tests.factories import TestUser, UserFactory

POSTS = "/api/v1/posts"


@pytest.fixture
async def alice(users: UserFactory) -> TestUser:
    return await users.create()


@pytest.fixture
async def bob(users: UserFactory) -> TestUser:
    return await users.create()


def vote_url(post_id: int) -> str:
    return f"{POSTS}/{post_id}/vote"


async def votes_of(client: AsyncClient, post_id: int, user: TestUser | None = None) -> int:
    response = await client.get(f"{POSTS}/{post_id}", headers=user.headers if user else None)
    assert response.status_code == 200, response.text
    return response.json()["votes"]  # type: ignore[no-any-return]


async def stored(app: FastAPI, post_id: int) -> tuple[int, int]:
    """(posts.votes, number of post_votes rows) straight from the database."""
    async with app.state.engine.connect() as connection:
        counter = await connection.scalar(select(Post.votes).where(Post.id == post_id))  # type: ignore[arg-type]
        rows = await connection.scalar(
            select(func.count()).select_from(PostVote).where(PostVote.post_id == post_id)  # type: ignore[arg-type]
        )
    return counter, rows  # type: ignore[return-value]


async def test_voting_twice_counts_once(
    app: FastAPI, client: AsyncClient, alice: TestUser, bob: TestUser, blog: Blog
) -> None:
    post = await blog.post(alice)
    for _ in range(2):
        response = await client.put(vote_url(post["id"]), headers=bob.headers)
        assert response.status_code == 204, response.text
        assert response.content == b""
    assert await votes_of(client, post["id"]) == 1
    assert await stored(app, post["id"]) == (1, 1)
    assert (await client.put(vote_url(post["id"]), headers=alice.headers)).status_code == 204
    assert await votes_of(client, post["id"]) == 2
    listed = (await client.get(POSTS)).json()["items"]
    assert [(item["id"], item["votes"]) for item in listed] == [(post["id"], 2)]


async def test_unvoting_removes_the_vote_then_404(
    app: FastAPI, client: AsyncClient, alice: TestUser, bob: TestUser, blog: Blog
) -> None:
    post = await blog.post(alice)
    await client.put(vote_url(post["id"]), headers=bob.headers)
    await client.put(vote_url(post["id"]), headers=alice.headers)
    response = await client.delete(vote_url(post["id"]), headers=bob.headers)
    assert response.status_code == 204 and response.content == b""
    assert await votes_of(client, post["id"]) == 1
    assert_problem(await client.delete(vote_url(post["id"]), headers=bob.headers), 404)
    assert await stored(app, post["id"]) == (1, 1)
    assert (await client.put(vote_url(post["id"]), headers=bob.headers)).status_code == 204
    assert await votes_of(client, post["id"]) == 2


async def test_unvoting_without_a_vote_is_404(
    app: FastAPI, client: AsyncClient, alice: TestUser, bob: TestUser, blog: Blog
) -> None:
    post = await blog.post(alice)
    await client.put(vote_url(post["id"]), headers=alice.headers)
    assert_problem(await client.delete(vote_url(post["id"]), headers=bob.headers), 404)
    assert await stored(app, post["id"]) == (1, 1)


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_missing_or_invisible_posts_are_404(
    app: FastAPI,
    client: AsyncClient,
    users: UserFactory,
    alice: TestUser,
    bob: TestUser,
    blog: Blog,
    method: str,
) -> None:
    draft = await blog.post(alice, published=False)
    assert_problem(
        await client.request(method, vote_url(draft["id"] + 1), headers=bob.headers), 404
    )
    assert_problem(await client.request(method, vote_url(draft["id"]), headers=bob.headers), 404)
    assert await stored(app, draft["id"]) == (0, 0)
    deleted = await blog.post(alice)
    await client.delete(f"{POSTS}/{deleted['id']}", headers=alice.headers)
    assert_problem(await client.request(method, vote_url(deleted["id"]), headers=bob.headers), 404)


async def test_the_owner_and_superusers_may_vote_on_a_draft(
    app: FastAPI, client: AsyncClient, users: UserFactory, alice: TestUser, blog: Blog
) -> None:
    admin = await users.create(superuser=True)
    draft = await blog.post(alice, published=False)
    assert (await client.put(vote_url(draft["id"]), headers=alice.headers)).status_code == 204
    assert (await client.put(vote_url(draft["id"]), headers=admin.headers)).status_code == 204
    assert await votes_of(client, draft["id"], alice) == 2
    assert (await client.delete(vote_url(draft["id"]), headers=admin.headers)).status_code == 204
    assert await stored(app, draft["id"]) == (1, 1)


async def test_a_vote_survives_its_post_being_unpublished_and_cannot_be_removed_meanwhile(
    client: AsyncClient, alice: TestUser, bob: TestUser, blog: Blog
) -> None:
    post = await blog.post(alice)
    await client.put(vote_url(post["id"]), headers=bob.headers)
    hide = await client.patch(
        f"{POSTS}/{post['id']}", json={"published": False}, headers=alice.headers
    )
    assert hide.status_code == 200 and hide.json()["votes"] == 1
    assert_problem(await client.delete(vote_url(post["id"]), headers=bob.headers), 404)
    await client.patch(f"{POSTS}/{post['id']}", json={"published": True}, headers=alice.headers)
    assert await votes_of(client, post["id"]) == 1


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_anonymous_votes_are_401(
    client: AsyncClient, alice: TestUser, blog: Blog, method: str
) -> None:
    post = await blog.post(alice)
    response = await client.request(method, vote_url(post["id"]))
    assert_problem(response, 401, "not-authenticated")
    assert response.headers["www-authenticate"] == "Bearer"
    bad_token = {"Authorization": "Bearer nope"}
    assert_problem(await client.request(method, vote_url(post["id"]), headers=bad_token), 401)
    assert_problem(await client.request(method, vote_url(post["id"] + 1)), 401)
    assert await votes_of(client, post["id"]) == 0


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
@pytest.mark.parametrize("item_id", ["abc", "0", "-1", "2147483648"])
async def test_a_malformed_post_id_is_422(
    client: AsyncClient, alice: TestUser, method: str, item_id: str
) -> None:
    response = await client.request(method, f"{POSTS}/{item_id}/vote", headers=alice.headers)
    assert_problem(response, 422)


async def test_there_is_no_votes_resource(client: AsyncClient, alice: TestUser) -> None:
    assert_problem(await client.get("/api/v1/votes", headers=alice.headers), 404)
    assert_problem(await client.post("/api/v1/votes", json={}, headers=alice.headers), 404)
    spec = (await client.get("/openapi.json")).json()
    vote_paths = [path for path in spec["paths"] if "vote" in path]
    assert vote_paths == ["/api/v1/posts/{item_id}/vote"]
    operations = spec["paths"][vote_paths[0]]
    assert {method: op["operationId"] for method, op in operations.items()} == {
        "put": "posts-vote",
        "delete": "posts-unvote",
    }
    assert operations["put"]["tags"] == ["posts"]


async def test_votes_cannot_be_set_through_a_write(
    client: AsyncClient, alice: TestUser, blog: Blog
) -> None:
    post = await blog.post(alice)
    url = f"{POSTS}/{post['id']}"
    for method in ("PATCH", "PUT"):
        body = {"title": "x", "votes": 100}
        response = await client.request(method, url, json=body, headers=alice.headers)
        assert_problem(response, 422)
    assert await votes_of(client, post["id"]) == 0


# the counter under cascades and concurrency


async def test_deleting_a_voter_keeps_the_counts_exact(
    app: FastAPI,
    client: AsyncClient,
    users: UserFactory,
    alice: TestUser,
    bob: TestUser,
    blog: Blog,
) -> None:
    admin = await users.create(superuser=True)
    carol = await users.create()
    first = await blog.post(alice)
    second = await blog.post(alice)
    bobs = await blog.post(bob)
    for voter in (bob, carol, alice):
        await client.put(vote_url(first["id"]), headers=voter.headers)
    await client.put(vote_url(second["id"]), headers=bob.headers)
    await client.put(vote_url(bobs["id"]), headers=carol.headers)
    tag = (await client.get(f"{POSTS}/{first['id']}")).headers["etag"]

    response = await client.delete(f"/api/v1/users/{bob.id}", headers=admin.headers)
    assert response.status_code == 204, response.text

    assert await stored(app, first["id"]) == (2, 2)
    assert await stored(app, second["id"]) == (0, 0)
    assert await stored(app, bobs["id"]) == (None, 0)  # bob's post went with bob
    assert await votes_of(client, first["id"]) == 2
    assert await votes_of(client, second["id"]) == 0
    assert (await client.get(f"{POSTS}/{first['id']}")).headers["etag"] != tag
    ranked = (await client.get(POSTS, params={"sort": "-votes"})).json()["items"]
    assert [(item["id"], item["votes"]) for item in ranked] == [(first["id"], 2), (second["id"], 0)]


async def test_deleting_a_post_deletes_its_votes(
    app: FastAPI, client: AsyncClient, alice: TestUser, bob: TestUser, blog: Blog
) -> None:
    doomed = await blog.post(alice)
    kept = await blog.post(alice)
    for voter in (alice, bob):
        await client.put(vote_url(doomed["id"]), headers=voter.headers)
    await client.put(vote_url(kept["id"]), headers=bob.headers)
    response = await client.delete(f"{POSTS}/{doomed['id']}", headers=alice.headers)
    assert response.status_code == 204
    assert await stored(app, doomed["id"]) == (None, 0)
    assert await stored(app, kept["id"]) == (1, 1)
    assert_problem(await client.delete(vote_url(doomed["id"]), headers=bob.headers), 404)
    assert (await client.delete(vote_url(kept["id"]), headers=bob.headers)).status_code == 204
    assert await stored(app, kept["id"]) == (0, 0)


async def test_concurrent_votes_are_all_counted(
    app: FastAPI, client: AsyncClient, users: UserFactory, alice: TestUser, blog: Blog
) -> None:
    voters = [await users.create() for _ in range(6)]
    post = await blog.post(alice)
    responses = await asyncio.gather(
        *(client.put(vote_url(post["id"]), headers=voter.headers) for voter in voters),
        *(client.put(vote_url(post["id"]), headers=voter.headers) for voter in voters[:3]),
    )
    assert [response.status_code for response in responses] == [204] * 9
    assert await stored(app, post["id"]) == (6, 6)
    responses = await asyncio.gather(
        *(client.delete(vote_url(post["id"]), headers=voter.headers) for voter in voters[:4]),
    )
    assert [response.status_code for response in responses] == [204] * 4
    assert await stored(app, post["id"]) == (2, 2)


async def test_the_same_vote_removed_twice_at_once_is_counted_once(
    app: FastAPI, client: AsyncClient, alice: TestUser, bob: TestUser, blog: Blog
) -> None:
    post = await blog.post(alice)
    await client.put(vote_url(post["id"]), headers=bob.headers)
    await client.put(vote_url(post["id"]), headers=alice.headers)
    responses = await asyncio.gather(
        client.delete(vote_url(post["id"]), headers=bob.headers),
        client.delete(vote_url(post["id"]), headers=bob.headers),
    )
    assert sorted(response.status_code for response in responses) == [204, 404]
    assert await stored(app, post["id"]) == (1, 1)
