"""The list query contract on posts: pages, Link/X-Total-Count, sort, filters, search."""

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from httpx import AsyncClient, Response

from tests.conftest import IS_POSTGRES
from tests.crud.conftest import Blog
from tests.crud.formats import PAGE_FIELDS, assert_problem, error_locs, link_params
from tests.factories import TestUser, UserFactory

POSTS = "/api/v1/posts"
SORTABLE = ("created_at", "votes", "id", "owner_id")


async def get_list(client: AsyncClient, **params: Any) -> Response:
    response = await client.get(POSTS, params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == set(PAGE_FIELDS)
    assert response.headers["x-total-count"] == str(body["total"])
    return response


async def listed(client: AsyncClient, **params: Any) -> list[int]:
    response = await get_list(client, **params)
    return [item["id"] for item in response.json()["items"]]


async def titled(blog: Blog, owner: TestUser, *titles: str, **fields: Any) -> list[int]:
    return [(await blog.post(owner, title=title, **fields))["id"] for title in titles]


@pytest.fixture
async def alice(users: UserFactory) -> TestUser:
    return await users.create()


# limit, offset, Link, X-Total-Count


async def test_default_page_is_20_newest_first_with_links(
    client: AsyncClient, alice: TestUser, blog: Blog
) -> None:
    ids = [(await blog.post(alice))["id"] for _ in range(25)]
    response = await get_list(client)
    body = response.json()
    assert [item["id"] for item in body["items"]] == ids[::-1][:20]
    assert (body["total"], body["limit"], body["offset"]) == (25, 20, 0)
    assert link_params(response.headers["link"]) == {"next": {"offset": "20"}}


async def test_offset_pages_cover_every_row_once(
    client: AsyncClient, alice: TestUser, blog: Blog
) -> None:
    ids = [(await blog.post(alice))["id"] for _ in range(25)]
    first = await get_list(client, limit=10, sort="id")
    middle = await get_list(client, limit=10, offset=10, sort="id")
    last = await get_list(client, limit=10, offset=20, sort="id")
    pages = [[item["id"] for item in page.json()["items"]] for page in (first, middle, last)]
    assert pages == [ids[:10], ids[10:20], ids[20:]]
    assert link_params(first.headers["link"]) == {
        "next": {"limit": "10", "offset": "10", "sort": "id"}
    }
    assert link_params(middle.headers["link"]) == {
        "next": {"limit": "10", "offset": "20", "sort": "id"},
        "prev": {"limit": "10", "offset": "0", "sort": "id"},
    }
    assert link_params(last.headers["link"]) == {
        "prev": {"limit": "10", "offset": "10", "sort": "id"}
    }
    assert all(page.json()["total"] == 25 for page in (first, middle, last))


async def test_following_next_links_walks_the_whole_list(
    client: AsyncClient, alice: TestUser, blog: Blog
) -> None:
    ids = [(await blog.post(alice, title=f"t{i}"))["id"] for i in range(7)]
    seen: list[int] = []
    url: str | None = f"http://testserver{POSTS}?limit=3&sort=-id&title__startswith=t"
    while url is not None:
        response = await client.get(url)
        assert response.status_code == 200
        seen += [item["id"] for item in response.json()["items"]]
        next_link = [
            part for part in response.headers.get("link", "").split(",") if 'rel="next"' in part
        ]
        url = next_link[0].split(";")[0].strip(" <>") if next_link else None
    assert seen == ids[::-1]


async def test_limit_bounds(client: AsyncClient, alice: TestUser, blog: Blog) -> None:
    for _ in range(3):
        await blog.post(alice)
    assert len(await listed(client, limit=1)) == 1
    assert (await get_list(client, limit=100)).json()["limit"] == 100
    for params in ({"limit": 101}, {"limit": 0}, {"limit": -1}, {"limit": "ten"}):
        problem = assert_problem(await client.get(POSTS, params=params), 422)
        assert ["query", "limit"] in error_locs(problem)
    for value in (-1, "x"):
        problem = assert_problem(await client.get(POSTS, params={"offset": value}), 422)
        assert ["query", "offset"] in error_locs(problem)


async def test_pages_past_the_end_are_empty_but_keep_the_total(
    client: AsyncClient, alice: TestUser, blog: Blog
) -> None:
    for _ in range(3):
        await blog.post(alice)
    response = await get_list(client, limit=2, offset=5)
    assert response.json()["items"] == []
    assert response.json()["total"] == 3
    assert response.headers["x-total-count"] == "3"
    assert list(link_params(response.headers["link"])) == ["prev"]


async def test_an_empty_table_lists_nothing(client: AsyncClient) -> None:
    response = await get_list(client)
    assert response.json()["items"] == [] and response.json()["total"] == 0
    assert "link" not in response.headers


# sort


async def test_sort_ascending_and_descending_on_several_fields(
    client: AsyncClient, users: UserFactory, alice: TestUser, blog: Blog
) -> None:
    bob = await users.create()
    c = (await blog.post(alice, published=True))["id"]
    a = (await blog.post(bob, published=False))["id"]
    b = (await blog.post(alice, published=True))["id"]
    assert await listed(client) == [b, c]  # anonymous: bob's draft hidden; newest first
    admin = await users.create(superuser=True)
    client.headers.update(admin.headers)
    assert await listed(client) == [b, a, c]
    vote = await client.put(f"{POSTS}/{a}/vote")  # the admin sees the draft
    assert vote.status_code == 204
    assert await listed(client, sort="created_at") == [c, a, b]
    assert await listed(client, sort="-created_at") == [b, a, c]
    assert await listed(client, sort="id") == [c, a, b]
    assert await listed(client, sort="-id") == [b, a, c]
    assert await listed(client, sort="owner_id,-created_at") == [b, c, a]
    assert await listed(client, sort="-owner_id,created_at") == [a, c, b]
    assert await listed(client, sort="-votes,created_at") == [a, c, b]
    assert await listed(client, sort="votes,-created_at") == [b, c, a]


async def test_ties_on_the_sort_key_are_broken_by_id(
    client: AsyncClient, users: UserFactory, alice: TestUser, blog: Blog
) -> None:
    bob = await users.create()
    carol = await users.create()
    same = [(await blog.post(bob))["id"] for _ in range(7)]
    first = [(await blog.post(alice))["id"]]
    last = [(await blog.post(carol))["id"]]

    async def in_pages(sort: str, size: int) -> list[int]:
        pages = [await listed(client, sort=sort, limit=size, offset=o) for o in range(0, 9, size)]
        walked = [item for page in pages for item in page]
        assert walked == await listed(client, sort=sort, limit=100), sort
        assert sorted(walked) == sorted(first + same + last), sort
        return walked

    def by_id(ids: list[int]) -> bool:
        return ids in (sorted(ids), sorted(ids, reverse=True))

    for size in (2, 3, 4):
        ascending = await in_pages("owner_id", size)
        assert ascending[0] == first[0] and ascending[-1] == last[0]
        assert by_id(ascending[1:-1])
        descending = await in_pages("-owner_id", size)
        assert descending[0] == last[0] and descending[-1] == first[0]
        assert by_id(descending[1:-1])
        for sort in ("votes", "-votes"):
            assert by_id(await in_pages(sort, size)), sort


@pytest.mark.parametrize("sort", ["colour", "-owner", "title,nope", "", "-", "title,,id"])
async def test_unknown_sort_field_is_422_naming_the_allowed_ones(
    client: AsyncClient, sort: str
) -> None:
    problem = assert_problem(await client.get(POSTS, params={"sort": sort}), 422)
    message = " ".join(item["msg"] for item in problem["errors"])
    assert "allowed" in message
    assert all(name in message for name in SORTABLE), message


# filters


async def test_equality_and_comparison_filters(
    client: AsyncClient, users: UserFactory, alice: TestUser, blog: Blog
) -> None:
    bob = await users.create()
    p1, p2, p3 = await titled(blog, alice, "one", "two", "three")
    p4 = (await blog.post(bob, title="four"))["id"]
    created = {item["id"]: item["created_at"] for item in (await get_list(client)).json()["items"]}
    assert await listed(client, sort="id", title="two") == [p2]
    assert await listed(client, sort="id", title__ne="two") == [p1, p3, p4]
    assert await listed(client, sort="id", title__lt="t") == [p1, p4]
    assert await listed(client, sort="id", title__gte="three") == [p2, p3]
    assert await listed(client, sort="id", id=p3) == [p3]
    assert await listed(client, sort="id", id__ne=p3) == [p1, p2, p4]
    assert await listed(client, sort="id", id__lt=p3) == [p1, p2]
    assert await listed(client, sort="id", id__lte=p3) == [p1, p2, p3]
    assert await listed(client, sort="id", id__gt=p3) == [p4]
    assert await listed(client, sort="id", id__gte=p3) == [p3, p4]
    assert await listed(client, sort="id", id__gt=p1, id__lt=p4) == [p2, p3]
    assert await listed(client, sort="id", owner_id=bob.id) == [p4]
    assert await listed(client, sort="id", owner_id__ne=bob.id) == [p1, p2, p3]
    assert await listed(client, sort="id", votes=0) == [p1, p2, p3, p4]
    assert await listed(client, sort="id", votes__gt=0) == []
    assert await listed(client, sort="id", votes__gte=0, votes__lte=0) == [p1, p2, p3, p4]
    assert await listed(client, sort="id", published=True) == [p1, p2, p3, p4]
    assert await listed(client, sort="id", published__ne=True) == []
    assert await listed(client, sort="id", created_at=created[p2]) == [p2]
    assert await listed(client, sort="id", created_at__gt=created[p2]) == [p3, p4]
    assert await listed(client, sort="id", created_at__gte=created[p2]) == [p2, p3, p4]
    assert await listed(client, sort="id", created_at__lt=created[p2]) == [p1]
    assert await listed(client, sort="id", created_at__lte=created[p2]) == [p1, p2]
    assert await listed(client, sort="id", updated_at__gte=created[p4]) == [p4]
    assert await listed(client, sort="id", title="four", owner_id=alice.id) == []


async def test_datetime_filters_respect_the_utc_offset(
    client: AsyncClient, alice: TestUser, blog: Blog
) -> None:
    p1, p2, p3 = await titled(blog, alice, "a", "b", "c")
    middle = datetime.fromisoformat((await client.get(f"{POSTS}/{p2}")).json()["created_at"])
    plus_two = middle.astimezone(timezone(timedelta(hours=2))).isoformat()
    minus_five = middle.astimezone(timezone(timedelta(hours=-5))).isoformat()
    assert await listed(client, sort="id", created_at__gte=plus_two) == [p2, p3]
    assert await listed(client, sort="id", created_at__lt=minus_five) == [p1]
    assert await listed(client, sort="id", created_at=plus_two) == [p2]
    zulu = middle.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert await listed(client, sort="id", created_at__lte=zulu) == [p1, p2]


async def test_in_filters_take_comma_separated_values(
    client: AsyncClient, users: UserFactory, alice: TestUser, blog: Blog
) -> None:
    bob = await users.create()
    carol = await users.create()
    p1, p2, p3 = await titled(blog, alice, "red", "green", "blue")
    p4 = (await blog.post(bob, title="cyan"))["id"]
    await blog.post(carol, title="black")
    assert await listed(client, sort="id", id__in=f"{p1},{p3}") == [p1, p3]
    assert await listed(client, sort="id", id__in=str(p2)) == [p2]
    assert await listed(client, sort="id", title__in="blue,cyan,nothing") == [p3, p4]
    assert await listed(client, sort="id", owner_id__in=f"{alice.id},{bob.id}") == [
        p1,
        p2,
        p3,
        p4,
    ]
    repeated = await client.get(POSTS, params=[("id__in", p1), ("id__in", p4), ("sort", "id")])
    assert [item["id"] for item in repeated.json()["items"]] == [p1, p4]
    # An empty list matches nothing, the same way on every shape of statement.
    assert await listed(client, title__in="") == []
    assert await listed(client, title__in=",", id__in=str(p1)) == []


async def test_isnull_filters(client: AsyncClient, alice: TestUser, blog: Blog) -> None:
    ids = await titled(blog, alice, "x", "y")
    assert await listed(client, sort="id", title__isnull="false") == ids
    assert await listed(client, sort="id", content__isnull="true") == []
    assert await listed(client, sort="id", published__isnull="false") == ids


async def test_string_match_filters(client: AsyncClient, alice: TestUser, blog: Blog) -> None:
    upper = (await blog.post(alice, title="Hello World", content="Greeting"))["id"]
    lower = (await blog.post(alice, title="hello there", content="greeting too"))["id"]
    other = (await blog.post(alice, title="Goodbye", content="WORLD ends"))["id"]
    assert await listed(client, sort="id", title__contains="ello") == [upper, lower]
    assert await listed(client, sort="id", title__contains="World") == [upper]
    assert await listed(client, sort="id", title__contains="xyz") == []
    assert await listed(client, sort="id", title__startswith="Good") == [other]
    assert await listed(client, sort="id", title__startswith="World") == []
    assert await listed(client, sort="id", title__icontains="HELLO") == [upper, lower]
    assert await listed(client, sort="id", title__icontains="wOrLd") == [upper]
    assert await listed(client, sort="id", content__icontains="world") == [other]
    assert await listed(client, sort="id", content__icontains="GREETING") == [upper, lower]


async def test_contains_and_startswith_are_case_sensitive(
    client: AsyncClient, alice: TestUser, blog: Blog
) -> None:
    upper = (await blog.post(alice, title="Hello World", content="Greeting"))["id"]
    lower = (await blog.post(alice, title="hello world", content="greeting"))["id"]
    assert await listed(client, sort="id", title__contains="World") == [upper]
    assert await listed(client, sort="id", title__contains="world") == [lower]
    assert await listed(client, sort="id", title__contains="WORLD") == []
    assert await listed(client, sort="id", title__startswith="Hello") == [upper]
    assert await listed(client, sort="id", title__startswith="hello") == [lower]
    assert await listed(client, sort="id", content__contains="greet") == [lower]


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("id", "abc"),
        ("id__gt", "1.5"),
        ("votes__lte", "many"),
        ("owner_id__in", "1,x"),
        ("published", "maybe"),
        ("created_at__gte", "yesterday"),
        ("created_at", "2024-13-40T00:00:00Z"),
        ("title__isnull", "perhaps"),
    ],
)
async def test_bad_filter_values_are_422(client: AsyncClient, param: str, value: str) -> None:
    problem = assert_problem(await client.get(POSTS, params={param: value}), 422)
    assert any(loc[:1] == ["query"] and param in loc for loc in error_locs(problem)), problem


@pytest.mark.parametrize(
    "param",
    [
        "colour",
        "owner",
        "owner__id",
        "title__regex",
        "title__iexact",
        "published__lt",
        "published__contains",
        "votes__contains",
        "id__icontains",
        "created_at__startswith",
        "version",
        "title__",
        "__title",
    ],
)
async def test_unknown_filter_or_operator_is_422_naming_the_allowed_ones(
    client: AsyncClient, param: str
) -> None:
    problem = assert_problem(await client.get(POSTS, params={param: "1"}), 422)
    message = " ".join(item["msg"] for item in problem["errors"])
    assert param in message
    assert "allowed" in message
    for allowed in ("title__icontains", "id__in", "votes__gte", "published__ne", "q", "sort"):
        assert allowed in message, message


async def test_wildcards_in_filter_values_match_literally(
    client: AsyncClient, alice: TestUser, blog: Blog
) -> None:
    percent, plain, underscore, letter, backslash = await titled(
        blog, alice, "100% sure", "1000 sure", "a_b", "axb", "back\\slash"
    )
    assert await listed(client, sort="id", title__contains="%") == [percent]
    assert await listed(client, sort="id", title__contains="0% s") == [percent]
    assert await listed(client, sort="id", title__startswith="100%") == [percent]
    assert await listed(client, sort="id", title__icontains="%") == [percent]
    assert await listed(client, sort="id", title__contains="_") == [underscore]
    assert await listed(client, sort="id", title__startswith="a_") == [underscore]
    assert await listed(client, sort="id", title__icontains="A_B") == [underscore]
    assert await listed(client, sort="id", title__contains="\\") == [backslash]
    assert await listed(client, sort="id", title__contains="\\s") == [backslash]
    assert await listed(client, sort="id", title="a_b") == [underscore]
    assert await listed(client, sort="id", title__contains="1000") == [plain]
    assert await listed(client, sort="id", title__contains="x") == [letter]


# q: search across title and content


async def test_q_searches_title_and_content_case_insensitively(
    client: AsyncClient, alice: TestUser, blog: Blog
) -> None:
    in_title = (await blog.post(alice, title="Python tips", content="short"))["id"]
    in_content = (await blog.post(alice, title="Snakes", content="About PYTHON"))["id"]
    await blog.post(alice, title="Cooking", content="Pasta")
    assert await listed(client, sort="id", q="python") == [in_title, in_content]
    assert await listed(client, sort="id", q="PyThOn") == [in_title, in_content]
    assert await listed(client, sort="id", q="tips") == [in_title]
    assert await listed(client, sort="id", q="about py") == [in_content]
    assert await listed(client, sort="id", q="nothing like it") == []
    assert await listed(client, sort="id", q="python", title__startswith="S") == [in_content]
    response = await get_list(client, q="python", limit=1, sort="id")
    assert response.json()["total"] == 2
    assert link_params(response.headers["link"]) == {
        "next": {"q": "python", "limit": "1", "sort": "id", "offset": "1"}
    }


async def test_q_matches_wildcards_literally(
    client: AsyncClient, alice: TestUser, blog: Blog
) -> None:
    percent = (await blog.post(alice, title="Sale", content="50% off"))["id"]
    await blog.post(alice, title="Sale", content="500 off")
    underscore = (await blog.post(alice, title="snake_case", content=""))["id"]
    await blog.post(alice, title="snakeXcase", content="")
    assert await listed(client, sort="id", q="0% o") == [percent]
    assert await listed(client, sort="id", q="%") == [percent]
    assert await listed(client, sort="id", q="e_c") == [underscore]
    assert await listed(client, sort="id", q="_") == [underscore]


@pytest.mark.postgres
async def test_q_folds_the_case_of_non_ascii_text(
    client: AsyncClient, alice: TestUser, blog: Blog
) -> None:
    assert IS_POSTGRES
    school = (await blog.post(alice, title="ÉCOLE d'été", content=""))["id"]
    street = (await blog.post(alice, title="x", content="Straße ÜBER alles"))["id"]
    assert await listed(client, sort="id", q="école") == [school]
    assert await listed(client, sort="id", q="ÉTÉ") == [school]
    assert await listed(client, sort="id", q="über") == [street]
    assert await listed(client, sort="id", title__icontains="École") == [school]
