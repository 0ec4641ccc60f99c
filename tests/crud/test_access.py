"""Access rules on posts and comments: owner, non-owner, anonymous, superuser, drafts."""

from dataclasses import dataclass
from typing import Any

import pytest
from httpx import AsyncClient

from tests.crud.conftest import Blog
from tests.crud.formats import assert_problem, error_locs
from tests.factories import TestUser, UserFactory

POSTS = "/api/v1/posts"
COMMENTS = "/api/v1/comments"


@dataclass
class Scene:
    """alice owns a published post and a draft, each with one comment; bob is a stranger."""

    alice: TestUser
    bob: TestUser
    admin: TestUser
    post: dict[str, Any]
    draft: dict[str, Any]
    comment: dict[str, Any]
    draft_comment: dict[str, Any]

    def headers(self, who: str) -> dict[str, str]:
        return {} if who == "anonymous" else getattr(self, who).headers


@pytest.fixture
async def scene(users: UserFactory, blog: Blog) -> Scene:
    alice = await users.create()
    bob = await users.create()
    admin = await users.create(superuser=True)
    post = await blog.post(alice, title="Public words")
    draft = await blog.post(alice, title="Secret words", published=False)
    return Scene(
        alice=alice,
        bob=bob,
        admin=admin,
        post=post,
        draft=draft,
        comment=await blog.comment(bob, post, body="On the public post"),
        draft_comment=await blog.comment(alice, draft, body="On the draft"),
    )


def ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


SEES_DRAFTS = ["alice", "admin"]
DRAFT_HIDDEN = ["bob", "anonymous"]


# the draft itself


@pytest.mark.parametrize("who", SEES_DRAFTS)
async def test_owner_and_superuser_see_the_draft(
    client: AsyncClient, scene: Scene, who: str
) -> None:
    headers = scene.headers(who)
    response = await client.get(f"{POSTS}/{scene.draft['id']}", headers=headers)
    assert response.status_code == 200
    assert response.json() == scene.draft
    listing = await client.get(POSTS, params={"sort": "id"}, headers=headers)
    assert ids(listing) == [scene.post["id"], scene.draft["id"]]
    assert listing.json()["total"] == 2 and listing.headers["x-total-count"] == "2"
    drafts = await client.get(POSTS, params={"published": "false"}, headers=headers)
    assert ids(drafts) == [scene.draft["id"]]


@pytest.mark.parametrize("who", DRAFT_HIDDEN)
async def test_others_cannot_see_the_draft_anywhere(
    client: AsyncClient, scene: Scene, who: str
) -> None:
    headers = scene.headers(who)
    draft_id = scene.draft["id"]
    assert_problem(await client.get(f"{POSTS}/{draft_id}", headers=headers), 404, "not-found")
    listing = await client.get(POSTS, headers=headers)
    assert ids(listing) == [scene.post["id"]]
    assert listing.json()["total"] == 1 and listing.headers["x-total-count"] == "1"
    for params in (
        {"published": "false"},
        {"id": str(draft_id)},
        {"id__in": f"{draft_id},{scene.post['id']}"},
        {"q": "secret"},
        {"title__startswith": "Secret"},
        {"owner_id": str(scene.alice.id), "published__ne": "true"},
    ):
        response = await client.get(POSTS, params=params, headers=headers)
        assert draft_id not in ids(response), params
        assert response.json()["total"] == len(ids(response)), params


async def test_a_draft_is_indistinguishable_from_a_missing_post(
    client: AsyncClient, scene: Scene
) -> None:
    draft_id, missing_id = scene.draft["id"], scene.draft["id"] + 100
    for method, body in (("GET", None), ("PATCH", {"title": "x"}), ("DELETE", None)):
        hidden = await client.request(
            method, f"{POSTS}/{draft_id}", json=body, headers=scene.bob.headers
        )
        missing = await client.request(
            method, f"{POSTS}/{missing_id}", json=body, headers=scene.bob.headers
        )
        assert_problem(hidden, 404)
        assert_problem(missing, 404)
        assert hidden.json() | {"detail": ""} == missing.json() | {"detail": ""}


async def test_writes_to_a_draft_by_others_are_404_and_change_nothing(
    client: AsyncClient, scene: Scene
) -> None:
    url = f"{POSTS}/{scene.draft['id']}"
    bob = scene.bob.headers
    assert_problem(await client.patch(url, json={"published": True}, headers=bob), 404)
    assert_problem(await client.delete(url, headers=bob), 404)
    assert_problem(await client.patch(url, json={"published": True}), 401)
    assert_problem(await client.delete(url), 401)
    assert (await client.get(url, headers=scene.alice.headers)).json() == scene.draft


async def test_superuser_may_edit_and_delete_a_draft(client: AsyncClient, scene: Scene) -> None:
    url = f"{POSTS}/{scene.draft['id']}"
    response = await client.patch(url, json={"title": "Edited"}, headers=scene.admin.headers)
    assert response.status_code == 200
    assert response.json()["published"] is False
    assert response.json()["owner_id"] == scene.alice.id
    assert (await client.delete(url, headers=scene.admin.headers)).status_code == 204


async def test_publishing_and_unpublishing_moves_the_post_in_and_out_of_view(
    client: AsyncClient, scene: Scene
) -> None:
    url = f"{POSTS}/{scene.post['id']}"
    bob = scene.bob.headers
    hidden = await client.patch(url, json={"published": False}, headers=scene.alice.headers)
    assert hidden.status_code == 200 and hidden.json()["published"] is False
    assert_problem(await client.get(url, headers=bob), 404)
    assert ids(await client.get(POSTS, headers=bob)) == []
    assert (await client.get(POSTS, headers=bob)).headers["x-total-count"] == "0"
    await client.patch(url, json={"published": True}, headers=scene.alice.headers)
    assert (await client.get(url, headers=bob)).status_code == 200
    assert ids(await client.get(POSTS, headers=bob)) == [scene.post["id"]]


# comments of a draft


@pytest.mark.parametrize("who", SEES_DRAFTS)
async def test_owner_and_superuser_see_the_draft_comments(
    client: AsyncClient, scene: Scene, who: str
) -> None:
    headers = scene.headers(who)
    comment = scene.draft_comment
    assert (await client.get(f"{COMMENTS}/{comment['id']}", headers=headers)).json() == comment
    nested = await client.get(f"{POSTS}/{scene.draft['id']}/comments", headers=headers)
    assert nested.json()["items"] == [comment]
    listing = await client.get(COMMENTS, params={"sort": "id"}, headers=headers)
    assert ids(listing) == [scene.comment["id"], comment["id"]]
    assert listing.headers["x-total-count"] == "2"


@pytest.mark.parametrize("who", DRAFT_HIDDEN)
async def test_others_cannot_see_the_draft_comments_anywhere(
    client: AsyncClient, scene: Scene, who: str
) -> None:
    headers = scene.headers(who)
    comment_url = f"{COMMENTS}/{scene.draft_comment['id']}"
    assert_problem(await client.get(comment_url, headers=headers), 404)
    nested = await client.get(f"{POSTS}/{scene.draft['id']}/comments", headers=headers)
    assert_problem(nested, 404, "not-found")
    listing = await client.get(COMMENTS, headers=headers)
    assert ids(listing) == [scene.comment["id"]]
    assert listing.json()["total"] == 1 and listing.headers["x-total-count"] == "1"
    by_post = await client.get(COMMENTS, params={"post_id": scene.draft["id"]}, headers=headers)
    assert ids(by_post) == [] and by_post.json()["total"] == 0
    public = await client.get(f"{POSTS}/{scene.post['id']}/comments", headers=headers)
    assert public.json()["items"] == [scene.comment]


async def test_commenting_on_a_draft_is_for_its_owner_and_superusers(
    client: AsyncClient, scene: Scene
) -> None:
    body = {"post_id": scene.draft["id"], "body": "Hello"}
    refused = await client.post(COMMENTS, json=body, headers=scene.bob.headers)
    problem = assert_problem(refused, 422, "missing-reference")
    assert error_locs(problem) == [["body", "post_id"]]
    missing = await client.post(
        COMMENTS, json={**body, "post_id": scene.draft["id"] + 100}, headers=scene.bob.headers
    )
    assert missing.json() | {"detail": ""} == problem | {"detail": ""}
    assert_problem(await client.post(COMMENTS, json=body), 401)
    for user in (scene.alice, scene.admin):
        response = await client.post(COMMENTS, json=body, headers=user.headers)
        assert response.status_code == 201, response.text
        assert response.json()["author_id"] == user.id
    nested = await client.get(f"{POSTS}/{scene.draft['id']}/comments", headers=scene.alice.headers)
    assert nested.json()["total"] == 3


async def test_a_comment_on_an_unpublished_post_is_hidden_from_its_author_too(
    client: AsyncClient, scene: Scene
) -> None:
    """The comment follows its post's visibility: bob's own comment is 404 for bob."""
    await client.patch(
        f"{POSTS}/{scene.post['id']}", json={"published": False}, headers=scene.alice.headers
    )
    url = f"{COMMENTS}/{scene.comment['id']}"
    bob = scene.bob.headers
    assert_problem(await client.get(url, headers=bob), 404)
    assert_problem(await client.patch(url, json={"body": "edit"}, headers=bob), 404)
    assert_problem(await client.delete(url, headers=bob), 404)
    assert ids(await client.get(COMMENTS, headers=bob)) == []
    assert (await client.get(url, headers=scene.alice.headers)).json() == scene.comment


# public reads, owned writes


async def test_anonymous_callers_read_published_posts_and_comments(
    client: AsyncClient, scene: Scene
) -> None:
    assert (await client.get(f"{POSTS}/{scene.post['id']}")).json() == scene.post
    assert (await client.get(f"{COMMENTS}/{scene.comment['id']}")).json() == scene.comment
    nested = await client.get(f"{POSTS}/{scene.post['id']}/comments")
    assert nested.json()["items"] == [scene.comment]


async def test_post_owner_cannot_edit_comments_of_others_on_their_post(
    client: AsyncClient, scene: Scene
) -> None:
    url = f"{COMMENTS}/{scene.comment['id']}"
    alice = scene.alice.headers
    assert_problem(await client.patch(url, json={"body": "censored"}, headers=alice), 403)
    assert_problem(await client.delete(url, headers=alice), 403)
    own = await client.patch(url, json={"body": "edited"}, headers=scene.bob.headers)
    assert own.status_code == 200 and own.json()["body"] == "edited"


async def test_superuser_reads_every_list_in_full(client: AsyncClient, scene: Scene) -> None:
    admin = scene.admin.headers
    posts = await client.get(POSTS, params={"sort": "id"}, headers=admin)
    assert ids(posts) == [scene.post["id"], scene.draft["id"]]
    comments = await client.get(COMMENTS, params={"sort": "id"}, headers=admin)
    assert ids(comments) == [scene.comment["id"], scene.draft_comment["id"]]
    assert comments.json()["total"] == 2
