"""`?expand=`: related rows in one request, on the demo resources (issue 14).

Posts expand `owner` (always) and `comments` (with `comments.author`); comments expand `post`
and `author`. Access inside expansions across every policy: tests/crud/test_expand_access.py.
"""

from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from tests.crud.conftest import Blog, counted_statements
from tests.crud.formats import assert_problem
from tests.crud.test_cursor import flat_ids, walk
from tests.factories import TestUser, UserFactory

POSTS = "/api/v1/posts"
COMMENTS = "/api/v1/comments"
PROFILE = {"id", "full_name"}  # what a nested user shows: never the email


@pytest.fixture
async def alice(users: UserFactory) -> TestUser:
    return await users.create(full_name="Alice")


@pytest.fixture
async def bob(users: UserFactory) -> TestUser:
    return await users.create(full_name="Bob")


async def get(client: AsyncClient, url: str, user: TestUser | None = None) -> Any:
    response = await client.get(url, headers=user.headers if user else None)
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_post_nests_its_first_comments_with_their_total(
    client: AsyncClient, blog: Blog, alice: TestUser, bob: TestUser
) -> None:
    post = await blog.post(alice)
    made = [await blog.comment(bob, post) for _ in range(22)]
    body = await get(client, f"{POSTS}/{post['id']}?expand=comments")
    assert body["owner"] == {"id": alice.id, "full_name": "Alice"}  # the default expansion
    assert body["comments_total"] == 22
    # At most 20 (the declared default), in the comments' default sort (id); the rest are
    # paged through the nested list.
    assert [comment["id"] for comment in body["comments"]] == [c["id"] for c in made[:20]]
    assert body["comments"][0] == made[0]
    rest = await get(client, f"{POSTS}/{post['id']}/comments?offset=20")
    assert [comment["id"] for comment in rest["items"]] == [c["id"] for c in made[20:]]


async def test_without_expand_nothing_changes(
    client: AsyncClient, blog: Blog, alice: TestUser, bob: TestUser
) -> None:
    post = await blog.post(alice)
    await blog.comment(bob, post)
    plain = await get(client, f"{POSTS}/{post['id']}")
    assert "comments" not in plain and "comments_total" not in plain
    assert plain["owner"] == {"id": alice.id, "full_name": "Alice"}
    assert "post" not in (await get(client, COMMENTS))["items"][0]


async def test_comments_nest_their_authors_as_public_profiles(
    client: AsyncClient, blog: Blog, alice: TestUser, bob: TestUser
) -> None:
    post = await blog.post(alice)
    await blog.comment(bob, post)
    await blog.comment(alice, post)
    body = await get(client, f"{POSTS}/{post['id']}?expand=comments.author")
    assert [c["author"] for c in body["comments"]] == [
        {"id": bob.id, "full_name": "Bob"},
        {"id": alice.id, "full_name": "Alice"},
    ]
    assert all(set(c["author"]) == PROFILE for c in body["comments"])


async def test_a_comment_nests_its_post_and_author(
    client: AsyncClient, blog: Blog, alice: TestUser, bob: TestUser
) -> None:
    post = await blog.post(alice, title="Nested")
    comment = await blog.comment(bob, post)
    body = await get(client, f"{COMMENTS}/{comment['id']}?expand=post,author")
    assert body["post"]["id"] == post["id"] and body["post"]["title"] == "Nested"
    assert "owner" not in body["post"]  # one level: the post's own expansions are not nested
    assert body["author"] == {"id": bob.id, "full_name": "Bob"}
    page = await get(client, f"{COMMENTS}?expand=author&expand=post")  # repeated works too
    assert page["items"][0]["post"]["id"] == post["id"]


async def test_lists_nest_per_row_and_count_only_each_rows_children(
    client: AsyncClient, blog: Blog, alice: TestUser, bob: TestUser
) -> None:
    quiet, busy = await blog.post(alice), await blog.post(alice)
    for _ in range(3):
        await blog.comment(bob, busy)
    page = await get(client, f"{POSTS}?expand=comments&sort=id")
    counts = {item["id"]: (item["comments_total"], len(item["comments"])) for item in page["items"]}
    assert counts == {quiet["id"]: (0, 0), busy["id"]: (3, 3)}
    first = await get(client, f"{POSTS}?expand=comments&sort=id&limit=1")
    assert first["items"][0]["comments"] == []
    following = await get(
        client, f"{POSTS}?expand=comments&sort=id&limit=1&cursor={first['next_cursor']}"
    )
    assert following["offset"] is None  # a cursor page
    assert following["items"][0]["comments_total"] == 3


async def test_writes_answer_with_the_expansion_asked_for(
    client: AsyncClient, blog: Blog, alice: TestUser, bob: TestUser
) -> None:
    post = await blog.post(alice)
    created = await client.post(
        f"{COMMENTS}?expand=post,author",
        json={"post_id": post["id"], "body": "First"},
        headers=bob.headers,
    )
    assert created.status_code == 201, created.text
    assert created.json()["post"]["id"] == post["id"]
    assert created.json()["author"] == {"id": bob.id, "full_name": "Bob"}
    patched = await client.patch(
        f"{POSTS}/{post['id']}?expand=comments", json={"title": "Edited"}, headers=alice.headers
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["comments_total"] == 1
    assert (
        patched.headers["etag"]
        == (await client.get(f"{POSTS}/{post['id']}?expand=comments")).headers["etag"]
    )


async def test_the_etag_covers_the_expanded_rows(
    client: AsyncClient, blog: Blog, alice: TestUser, bob: TestUser
) -> None:
    post = await blog.post(alice)
    comment = await blog.comment(bob, post)
    url = f"{POSTS}/{post['id']}?expand=comments.author"
    tag = (await client.get(url)).headers["etag"]
    assert (await client.get(url, headers={"If-None-Match": tag})).status_code == 304
    bare = (await client.get(f"{POSTS}/{post['id']}")).headers["etag"]
    assert bare != tag
    changes = [
        ("PATCH", f"{COMMENTS}/{comment['id']}", {"body": "Edited"}, bob),  # an expanded row
        ("PATCH", "/api/v1/users/me", {"full_name": "Robert"}, bob),  # a nested author
        ("POST", COMMENTS, {"post_id": post["id"], "body": "Another"}, alice),  # the total
    ]
    for method, target, body, user in changes:
        response = await client.request(method, target, json=body, headers=user.headers)
        assert response.status_code in (200, 201), response.text
        stale = await client.get(url, headers={"If-None-Match": tag})
        assert stale.status_code == 200, (method, target)  # never a 304 for stale nested rows
        tag = stale.headers["etag"]
    # Writes compare the post's own version: the tag read with expansions works for If-Match.
    edited = await client.patch(
        f"{POSTS}/{post['id']}",
        json={"title": "Still mine"},
        headers={**alice.headers, "If-Match": tag},
    )
    assert edited.status_code == 200, edited.text


@pytest.mark.parametrize(
    ("url", "names"),
    [
        (f"{POSTS}?expand=nope", "owner, comments, comments.author"),
        (f"{POSTS}?expand=comments.nope", "owner, comments, comments.author"),
        (f"{POSTS}?expand=comments.author.posts", "nests too deep"),
        (f"{POSTS}?expand=owner.posts", "nests too deep"),
        (f"{COMMENTS}?expand=post.comments", "nests too deep"),
        (f"{COMMENTS}?expand=" + ",".join(["post"] * 11), "at most 10 entries"),
    ],
)
async def test_bad_expansions_are_422_naming_the_allowed_ones(
    client: AsyncClient, url: str, names: str
) -> None:
    problem = assert_problem(await client.get(url), 422, "validation-error")
    assert names in problem["detail"]
    assert problem["errors"][0]["loc"] == ["query", "expand"]


async def test_get_and_writes_refuse_bad_expansions_too(
    client: AsyncClient, blog: Blog, alice: TestUser
) -> None:
    post = await blog.post(alice)
    assert_problem(await client.get(f"{POSTS}/{post['id']}?expand=votes"), 422)
    response = await client.patch(
        f"{POSTS}/{post['id']}?expand=votes", json={"title": "x"}, headers=alice.headers
    )
    assert_problem(response, 422)
    assert (await get(client, f"{POSTS}/{post['id']}"))["title"] == post["title"]  # nothing lost


async def test_a_page_costs_the_same_statements_whatever_its_size(
    app: FastAPI, client: AsyncClient, blog: Blog, alice: TestUser, bob: TestUser
) -> None:
    """No N+1: the page (owner joined), then one statement for all its posts' comments with
    their authors joined."""
    for _ in range(20):
        post = await blog.post(alice)
        for _ in range(3):
            await blog.comment(bob, post)
    counts = []
    for limit in (1, 20):
        with counted_statements(app) as statements:
            page = await get(client, f"{POSTS}?expand=owner,comments.author&limit={limit}")
        assert len(page["items"]) == limit
        assert all(len(item["comments"]) == 3 for item in page["items"])
        counts.append(len(statements))
    assert counts[0] == counts[1] <= 2, counts


def expand_enum(operation: dict[str, Any]) -> list[str]:
    [parameter] = [p for p in operation["parameters"] if p["name"] == "expand"]
    assert (parameter["style"], parameter["explode"]) == ("form", False)  # comma-separated
    return parameter["schema"]["items"]["enum"]  # type: ignore[no-any-return]


async def test_openapi_documents_expand_as_an_enum_and_relations_as_optional_properties(
    spec: dict[str, Any],
) -> None:
    paths, schemas = spec["paths"], spec["components"]["schemas"]
    for operation in (
        paths[POSTS]["get"],
        paths[f"{POSTS}/{{item_id}}"]["get"],
        paths[f"{POSTS}/{{item_id}}"]["patch"],
        paths[POSTS]["post"],
    ):
        assert expand_enum(operation) == ["owner", "comments", "comments.author"]
    assert expand_enum(paths[COMMENTS]["get"]) == ["post", "author"]
    post = schemas["PostPublic"]
    assert {"comments", "comments_total"}.isdisjoint(post["required"])
    [comments] = [
        option for option in post["properties"]["comments"]["anyOf"] if option["type"] == "array"
    ]
    assert comments["items"] == {"$ref": "#/components/schemas/CommentPublic"}
    comment = schemas["CommentPublic"]
    assert {"post", "author"}.isdisjoint(comment["required"])
    refs = {name: comment["properties"][name]["anyOf"][0]["$ref"] for name in ("post", "author")}
    assert refs == {
        "post": "#/components/schemas/PostSummary",
        "author": "#/components/schemas/UserProfile",
    }
    assert "email" not in schemas["UserProfile"]["properties"]


async def test_fields_keep_only_the_named_properties_at_every_level(
    client: AsyncClient, blog: Blog, alice: TestUser, bob: TestUser
) -> None:
    post = await blog.post(alice, title="Sparse")
    await blog.comment(bob, post)
    body = await get(client, f"{POSTS}/{post['id']}?fields=title,owner.full_name")
    assert body == {
        "id": post["id"],
        "title": "Sparse",
        "owner": {"id": alice.id, "full_name": "Alice"},
    }
    page = await get(
        client, f"{POSTS}?expand=comments.author&fields=title,comments.body,comments.author"
    )
    [item] = page["items"]
    assert set(item) == {"id", "title", "comments"}
    assert set(item["comments"][0]) == {"id", "body", "author"}
    assert set(page) >= {"items", "total", "next_cursor"}  # the envelope stays whole
    comments = await get(client, f"{COMMENTS}?fields=body&expand=post&fields=post.title")
    assert comments["items"][0]["post"] == {"id": post["id"], "title": "Sparse"}


@pytest.mark.parametrize(
    "query",
    ["fields=nope", "fields=owner.email", "fields=title.x", "fields=" + ",".join(["id"] * 51)],
)
async def test_bad_fields_are_422(
    client: AsyncClient, blog: Blog, alice: TestUser, query: str
) -> None:
    post = await blog.post(alice)
    for url in (f"{POSTS}?{query}", f"{POSTS}/{post['id']}?{query}"):
        problem = assert_problem(await client.get(url), 422, "validation-error")
        assert problem["errors"][0]["loc"] == ["query", "fields"], url


async def test_filters_across_to_one_relations(
    client: AsyncClient, blog: Blog, alice: TestUser, bob: TestUser
) -> None:
    by_alice, by_bob = await blog.post(alice), await blog.post(bob)
    draft = await blog.post(bob, published=False)
    found = await get(client, f"{POSTS}?owner.full_name__icontains=ALI")
    assert [item["id"] for item in found["items"]] == [by_alice["id"]]
    on_alice = await blog.comment(bob, by_alice)
    await blog.comment(alice, by_bob)
    on_draft = await blog.comment(bob, draft)
    mine = await get(client, f"{COMMENTS}?post.owner_id={alice.id}&sort=id")
    assert [item["id"] for item in mine["items"]] == [on_alice["id"]]
    drafts = await get(client, f"{COMMENTS}?post.published=false", bob)
    assert [item["id"] for item in drafts["items"]] == [on_draft["id"]]
    assert (await get(client, f"{COMMENTS}?post.published=false", alice))["items"] == []
    first = await get(client, f"{COMMENTS}?post.published=true&sort=id&limit=1")
    following = await get(
        client, f"{COMMENTS}?post.published=true&sort=id&limit=1&cursor={first['next_cursor']}"
    )
    assert [page["items"][0]["body"] for page in (first, following)] == [
        on_alice["body"],
        (await get(client, f"{COMMENTS}?author_id={alice.id}"))["items"][0]["body"],
    ]
    problem = assert_problem(await client.get(f"{POSTS}?owner.email=x"), 422)
    assert problem["errors"][0]["loc"] == ["query"]


async def test_sorting_by_a_to_one_relation_pages_by_cursor(
    client: AsyncClient, blog: Blog, users: UserFactory
) -> None:
    names = ["Carol", "Ada", "Bea", "Carol", "Dan"]  # one case: collations agree on these
    authors = [await users.create(full_name=name) for name in names]
    written = [
        (name, (await blog.post(author))["id"])
        for name, author in zip(names, authors, strict=True)
        for _ in range(2)
    ]
    expected = [post_id for _, post_id in sorted(written)]  # ties broken by id
    ascending = await walk(client, POSTS, {"sort": "owner.full_name", "limit": 3})
    assert flat_ids(ascending) == expected
    descending = await walk(client, POSTS, {"sort": "-owner.full_name,-id", "limit": 4})
    assert flat_ids(descending) == expected[::-1]
    offset = await get(client, f"{POSTS}?sort=owner.full_name&limit=4&offset=2")
    assert [item["id"] for item in offset["items"]] == expected[2:6]
    problem = assert_problem(await client.get(f"{POSTS}?sort=owner.email"), 422)
    assert "owner.full_name" in problem["errors"][0]["msg"]


async def test_a_nested_list_expands_too(
    client: AsyncClient, blog: Blog, alice: TestUser, bob: TestUser
) -> None:
    post = await blog.post(alice)
    await blog.comment(bob, post)
    page = await get(client, f"{POSTS}/{post['id']}/comments?expand=author&fields=body,author")
    assert page["items"][0]["author"] == {"id": bob.id, "full_name": "Bob"}
    assert set(page["items"][0]) == {"id", "body", "author"}
