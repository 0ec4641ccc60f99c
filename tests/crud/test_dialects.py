"""The frontend dialects (`/api/compat/json-server`, `/api/compat/simple-rest`): each request
is the `/api/v1` one it translates to, framed as its data provider reads it.

The providers themselves run against a live app in tests/frontend/.
"""

import json
from typing import Any

import pytest
from httpx import AsyncClient, Response

from tests.crud.conftest import Blog
from tests.crud.formats import assert_problem
from tests.factories import TestUser, UserFactory

JSON_SERVER = "/api/compat/json-server"
SIMPLE_REST = "/api/compat/simple-rest"
V1 = "/api/v1"


class Scene:
    def __init__(self, alice: TestUser, bob: TestUser, posts: list[dict[str, Any]]) -> None:
        self.alice, self.bob, self.posts = alice, bob, posts

    @property
    def draft(self) -> dict[str, Any]:
        return next(post for post in self.posts if not post["published"])


@pytest.fixture
async def scene(blog: Blog, users: UserFactory) -> Scene:
    """Alice's five posts (one a draft, titles naming fruit) and Bob's two, two comments."""
    alice = await users.create(full_name="Alice Liddell")
    bob = await users.create(full_name="Bob Dylan")
    posts = [
        await blog.post(alice, title="Apple pie", content="sweet"),
        await blog.post(alice, title="Banana bread", content="sweet"),
        await blog.post(alice, title="Cherry draft", published=False),
        await blog.post(alice, title="apple cider", content="sour"),
        await blog.post(alice, title="Date cake"),
        await blog.post(bob, title="Bob's apple"),
        await blog.post(bob, title="Bob's fig"),
    ]
    await blog.comment(bob, posts[0], body="Yum")
    await blog.comment(alice, posts[0], body="Thanks")
    return Scene(alice, bob, posts)


def ids(response: Response) -> list[int]:
    assert response.status_code == 200, response.text
    body = response.json()
    items = body["items"] if isinstance(body, dict) else body
    return [item["id"] for item in items]


# (json-server query, simple-rest params, the /api/v1 query they mean)
SAME_PAGES = [
    (
        "_start=0&_end=3&_sort=id&_order=ASC",
        {"range": "[0,2]", "sort": '["id","ASC"]'},
        "limit=3&sort=id",
    ),
    (
        "_start=2&_end=4&_sort=id&_order=desc",
        {"range": "[2,3]", "sort": '["id","DESC"]'},
        "offset=2&limit=2&sort=-id",
    ),
    (
        "q=apple&_sort=id&_order=ASC",
        {"filter": '{"q":"apple"}', "sort": '["id","ASC"]'},
        "q=apple&sort=id&limit=100",
    ),
    ("title_like=APPLE", {"filter": '{"title_like":"APPLE"}'}, "title__icontains=APPLE&limit=100"),
    (
        "_start=3&_sort=id",
        {"range": "[3,102]", "sort": '["id","ASC"]'},
        "offset=3&limit=100&sort=id",
    ),
    ("published=false", {"filter": '{"published":false}'}, "published=false&limit=100"),
    ("id_ne=1&id_lte=4", {"filter": '{"id_ne":1,"id_lte":4}'}, "id__ne=1&id__lte=4&limit=100"),
    (
        "owner.full_name_like=dyl",
        {"filter": '{"owner":{"full_name_like":"dyl"}}'},
        "owner.full_name__icontains=dyl&limit=100",
    ),
    (
        "_sort=owner_id,id&_order=DESC,ASC",
        {"sort": '["owner_id","DESC"]'},
        "sort=-owner_id,id&limit=100",
    ),
]


@pytest.mark.parametrize(("json_server", "simple_rest", "v1"), SAME_PAGES)
async def test_a_dialect_list_is_the_v1_page_it_translates_to(
    client: AsyncClient, scene: Scene, json_server: str, simple_rest: dict[str, str], v1: str
) -> None:
    headers = scene.alice.headers
    expected = await client.get(f"{V1}/posts?{v1}", headers=headers)
    total = expected.json()["total"]
    first = await client.get(f"{JSON_SERVER}/posts?{json_server}", headers=headers)
    assert first.json() == expected.json()["items"]  # the same rows, the same JSON
    assert first.headers["x-total-count"] == str(total)
    second = await client.get(f"{SIMPLE_REST}/posts", params=simple_rest, headers=headers)
    if "owner_id" in v1:  # one sort key here: compare the order it fixes
        assert sorted(ids(second)) == sorted(ids(expected))
    else:
        assert second.json() == expected.json()["items"]
    shown = len(second.json())
    start = json.loads(simple_rest.get("range", "[0,0]"))[0]
    rows = f"{start}-{start + shown - 1}" if shown else "*"
    assert second.headers["content-range"] == f"posts {rows}/{total}"


async def test_get_many_and_get_many_reference(client: AsyncClient, scene: Scene) -> None:
    """react-admin's getMany: `id=1&id=2` (json-server), `filter={"id":[...]}` (simple-rest);
    getManyReference: the target as a filter. Rows the caller may not read stay out."""
    wanted = [scene.posts[0]["id"], scene.draft["id"], scene.posts[5]["id"]]
    query = "&".join(f"id={post_id}" for post_id in wanted)
    assert sorted(ids(await client.get(f"{JSON_SERVER}/posts?{query}"))) == sorted(
        [wanted[0], wanted[2]]  # the draft is Alice's
    )
    mine = await client.get(f"{JSON_SERVER}/posts?{query}", headers=scene.alice.headers)
    assert sorted(ids(mine)) == sorted(wanted)
    many = {"filter": json.dumps({"id": wanted})}
    assert sorted(ids(await client.get(f"{SIMPLE_REST}/posts", params=many))) == sorted(
        [wanted[0], wanted[2]]
    )
    none = await client.get(f"{SIMPLE_REST}/posts", params={"filter": '{"id":[]}'})
    assert ids(none) == [] and none.headers["content-range"] == "posts */0"
    # comments have no `id` filter on /api/v1: the dialects add it for getMany
    post_id = scene.posts[0]["id"]
    comments = await client.get(f"{JSON_SERVER}/comments?post_id={post_id}&_sort=id&_order=ASC")
    assert len(ids(comments)) == 2 and comments.headers["x-total-count"] == "2"
    first = ids(comments)[0]
    assert ids(await client.get(f"{JSON_SERVER}/comments?id={first}")) == [first]
    reference = {"filter": json.dumps({"post_id": post_id}), "range": "[0,0]"}
    page = await client.get(f"{SIMPLE_REST}/comments", params=reference)
    assert ids(page) == [first]
    assert page.headers["content-range"] == "comments 0-0/2"


async def test_null_in_a_simple_rest_filter_is_isnull(client: AsyncClient, scene: Scene) -> None:
    response = await client.get(f"{SIMPLE_REST}/posts", params={"filter": '{"owner_id":null}'})
    assert ids(response) == []
    not_null = await client.get(f"{V1}/posts?owner_id__isnull=true")
    assert not_null.json()["total"] == 0


async def test_reads_follow_visibility(client: AsyncClient, scene: Scene) -> None:
    draft = scene.draft["id"]
    for base in (JSON_SERVER, SIMPLE_REST):
        assert draft not in ids(await client.get(f"{base}/posts"))
        assert draft not in ids(await client.get(f"{base}/posts", headers=scene.bob.headers))
        assert draft in ids(await client.get(f"{base}/posts", headers=scene.alice.headers))
        assert_problem(await client.get(f"{base}/posts/{draft}"), 404)
        own = await client.get(f"{base}/posts/{draft}", headers=scene.alice.headers)
        assert (
            own.json()
            == (await client.get(f"{V1}/posts/{draft}", headers=scene.alice.headers)).json()
        )
        tag = own.headers["etag"]
        cached = await client.get(
            f"{base}/posts/{draft}", headers={**scene.alice.headers, "If-None-Match": tag}
        )
        assert cached.status_code == 304


async def test_embed_nests_relations(client: AsyncClient, scene: Scene) -> None:
    post_id = scene.posts[0]["id"]
    one = (await client.get(f"{JSON_SERVER}/posts/{post_id}?_embed=comments")).json()
    assert one["comments_total"] == 2 and len(one["comments"]) == 2
    listed = await client.get(
        f"{SIMPLE_REST}/posts",
        params={"embed": '["comments"]', "filter": json.dumps({"id": [post_id]})},
    )
    assert listed.json()[0]["comments"] == one["comments"]
    assert_problem(await client.get(f"{JSON_SERVER}/posts?_embed=nope"), 422)


async def test_writes_take_the_whole_record_back_and_apply_only_writable_fields(
    client: AsyncClient, scene: Scene
) -> None:
    """react-admin's edit form sends id, owner, counters and timestamps back."""
    alice, bob = scene.alice.headers, scene.bob.headers
    record = (
        await client.get(f"{SIMPLE_REST}/posts/{scene.posts[1]['id']}?", headers=alice)
    ).json()
    sent = {**record, "title": "Banana loaf", "owner_id": scene.bob.id, "votes": 99, "id": 12345}
    sent["owner"] = {"id": scene.bob.id, "full_name": "Mallory"}
    put = await client.put(f"{SIMPLE_REST}/posts/{record['id']}", json=sent, headers=alice)
    assert put.status_code == 200, put.text
    after = (await client.get(f"{V1}/posts/{record['id']}", headers=alice)).json()
    assert after == put.json()
    assert after["title"] == "Banana loaf"
    assert (after["id"], after["owner_id"], after["votes"]) == (record["id"], scene.alice.id, 0)
    assert_problem(  # while Bob can see it
        await client.put(f"{JSON_SERVER}/posts/{record['id']}", json={"title": "x"}, headers=bob),
        403,
    )
    # updateMany sends only the changed fields, with PUT; refine updates with PATCH
    for method, base in (("PUT", JSON_SERVER), ("PATCH", JSON_SERVER), ("PUT", SIMPLE_REST)):
        response = await client.request(
            method, f"{base}/posts/{record['id']}", json={"published": False}, headers=alice
        )
        assert response.status_code == 200 and response.json()["published"] is False
        assert response.json()["title"] == "Banana loaf"  # not replaced by a default
    unknown = await client.put(
        f"{JSON_SERVER}/posts/{record['id']}", json={**record, "colour": "red"}, headers=alice
    )
    assert_problem(unknown, 422)
    assert unknown.json()["errors"][0]["loc"] == ["body", "colour"]
    invalid = await client.patch(
        f"{JSON_SERVER}/posts/{record['id']}", json={"title": ""}, headers=alice
    )
    assert_problem(invalid, 422)
    stale = await client.put(
        f"{JSON_SERVER}/posts/{record['id']}",
        json={"title": "late"},
        headers={**alice, "If-Match": '"1.0"'},
    )
    assert_problem(stale, 412)
    assert (await client.get(f"{V1}/posts/{record['id']}", headers=alice)).json()[
        "title"
    ] == "Banana loaf"


async def test_create_sets_the_owner_and_honours_idempotency_keys(
    client: AsyncClient, scene: Scene
) -> None:
    alice = scene.alice.headers
    body = {"title": "From react-admin", "owner_id": scene.bob.id, "id": 7, "votes": 3}
    headers = {**alice, "Idempotency-Key": "ra-create-1"}
    first = await client.post(f"{JSON_SERVER}/posts", json=body, headers=headers)
    assert first.status_code == 201, first.text
    created = first.json()
    assert created["owner_id"] == scene.alice.id and created["votes"] == 0
    assert first.headers["location"].endswith(f"{JSON_SERVER}/posts/{created['id']}")
    assert "etag" in first.headers
    again = await client.post(f"{JSON_SERVER}/posts", json=body, headers=headers)
    assert again.status_code == 201 and again.json() == created
    assert ids(await client.get(f"{V1}/posts?title=From react-admin", headers=alice)) == [
        created["id"]
    ]
    comment = await client.post(
        f"{SIMPLE_REST}/comments", json={"body": "Hi", "post_id": created["id"]}, headers=alice
    )
    assert comment.status_code == 201 and comment.json()["author_id"] == scene.alice.id
    assert_problem(await client.post(f"{SIMPLE_REST}/posts", json={"title": "anonymous"}), 401)


async def test_delete_answers_the_deleted_record(client: AsyncClient, scene: Scene) -> None:
    """react-admin's delete and deleteMany read the answer's `id`."""
    alice, bob = scene.alice.headers, scene.bob.headers
    post_id = scene.posts[0]["id"]
    assert_problem(await client.delete(f"{SIMPLE_REST}/posts/{post_id}", headers=bob), 403)
    shown = (await client.get(f"{V1}/posts/{post_id}", headers=alice)).json()
    gone = await client.delete(
        f"{SIMPLE_REST}/posts/{post_id}", headers={**alice, "Content-Type": "text/plain"}
    )
    assert gone.status_code == 200 and gone.json() == shown
    assert_problem(await client.get(f"{V1}/posts/{post_id}", headers=alice), 404)
    assert_problem(await client.delete(f"{JSON_SERVER}/posts/{post_id}", headers=alice), 404)
    # the cascade is the API's: its comments went with it
    assert ids(await client.get(f"{V1}/comments?post_id={post_id}")) == []


BAD_JSON_SERVER = [
    ("_start=5&_end=2", "_end"),
    ("_start=0&_end=101", "_end"),
    ("_start=0&_end=0", "_end"),
    ("_start=-1&_end=5", "_start"),
    ("_start=x", "_start"),
    ("_sort=content", "_sort"),
    ("_sort=id&_order=sideways", "_sort"),
    ("_sort=id&_order=ASC,DESC", "_order"),
    ("colour=red", "colour"),
    ("_page=2", "_page"),
    ("votes_gte=many", "votes_gte"),
    ("published=maybe", "published"),
    ("title_like=a&title_like=b", "title_like"),
    ("_embed=owner.comments", "_embed"),
]


@pytest.mark.parametrize(("query", "loc"), BAD_JSON_SERVER)
async def test_bad_json_server_queries_are_422_naming_the_parameter(
    client: AsyncClient, query: str, loc: str
) -> None:
    response = await client.get(f"{JSON_SERVER}/posts?{query}")
    assert_problem(response, 422)
    assert response.json()["errors"][0]["loc"][:2] == ["query", loc], response.json()


BAD_SIMPLE_REST = [
    ({"sort": '["id"'}, ["query", "sort"]),
    ({"sort": '["id","UP"]'}, ["query", "sort"]),
    ({"sort": '{"id":"ASC"}'}, ["query", "sort"]),
    ({"range": "[0,24"}, ["query", "range"]),
    ({"range": "[0,100]"}, ["query", "range"]),
    ({"range": "[5,1]"}, ["query", "range"]),
    ({"range": '["a","b"]'}, ["query", "range"]),
    ({"filter": "{"}, ["query", "filter"]),
    ({"filter": "[]"}, ["query", "filter"]),
    ({"filter": '{"colour":"red"}'}, ["query", "filter", "colour"]),
    ({"filter": '{"votes_gte":"many"}'}, ["query", "filter", "votes_gte"]),
    ({"filter": '{"title":{"$regex":"a"}}'}, ["query", "filter", "title.$regex"]),
    ({"filter": '{"id":[[1]]}'}, ["query", "filter", "id"]),
    ({"embed": '["nope"]'}, ["query", "embed"]),
    ({"page": "2"}, ["query", "page"]),
]


@pytest.mark.parametrize(("params", "loc"), BAD_SIMPLE_REST)
async def test_bad_simple_rest_queries_are_422_naming_the_parameter(
    client: AsyncClient, params: dict[str, str], loc: list[str]
) -> None:
    response = await client.get(f"{SIMPLE_REST}/posts", params=params)
    assert_problem(response, 422)
    assert response.json()["errors"][0]["loc"][: len(loc)] == loc, response.json()


async def test_problems_also_carry_the_message_the_providers_show(
    client: AsyncClient, scene: Scene
) -> None:
    """react-admin's fetchJson and refine's axios client read `message` from an error body."""
    post_id = scene.posts[0]["id"]
    refused = await client.put(
        f"{JSON_SERVER}/posts/{post_id}", json={"title": "x"}, headers=scene.bob.headers
    )
    body = assert_problem(refused, 403)
    assert body["message"] == body["detail"]
    invalid = await client.patch(
        f"{SIMPLE_REST}/posts/{post_id}", json={"title": ""}, headers=scene.alice.headers
    )
    assert assert_problem(invalid, 422)["message"].startswith("title: String should have")
    bad_range = await client.get(f"{SIMPLE_REST}/posts", params={"range": "[0,500]"})
    assert assert_problem(bad_range, 422)["message"] == "range: the range spans more than 100 rows"
    unauthenticated = await client.post(f"{JSON_SERVER}/posts", json={"title": "x"})
    assert assert_problem(unauthenticated, 401)["message"] == "Not authenticated"
    # /api/v1 is unchanged
    same = await client.patch(
        f"{V1}/posts/{post_id}", json={"title": "x"}, headers=scene.bob.headers
    )
    assert "message" not in assert_problem(same, 403)
