"""What one anonymous list request may cost: how deep an offset goes, how long an `__in` list
is, which columns a sort may use, and how many statements its shapes leave behind."""

import gc
import itertools
import math
import tracemalloc
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    func,
)
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine
from starlette.datastructures import QueryParams

from app.core.config import get_settings
from app.core.db import UTCDateTime
from app.crud.fields import python_type
from app.crud.filters import ValueList
from app.crud.params import ListQuery
from app.crud.plan import ListPlan, ListPlanner
from app.crud.relations import resolve
from app.crud.repository import Repository
from app.crud.resource import Resource, Viewer, index_leaders
from app.crud.statements import MAX_SHAPE_BYTES
from app.main import create_app
from app.models.comment import Comment, CommentCreate, CommentPublic, CommentUpdate, comments
from app.models.post import posts
from tests.conftest import Serve
from tests.crud.conftest import Blog, counted_statements
from tests.crud.formats import assert_problem, error_locs
from tests.factories import TestUser, UserFactory

POSTS = "/api/v1/posts"
COMMENTS = "/api/v1/comments"
SETTINGS = get_settings()
ABSENT = 10**6  # ids no row has


@pytest.fixture
async def alice(users: UserFactory) -> TestUser:
    return await users.create()


def ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


# offset


async def test_an_offset_past_max_offset_is_422_pointing_to_cursors(
    client: AsyncClient, alice: TestUser, blog: Blog
) -> None:
    await blog.post(alice)
    deepest = SETTINGS.MAX_OFFSET
    assert ids(await client.get(POSTS, params={"offset": deepest})) == []
    for params in ({"offset": deepest + 1}, {"sort": "-votes", "offset": 100_000_000}):
        problem = assert_problem(await client.get(POSTS, params=params), 422, "validation-error")
        assert error_locs(problem) == [["query", "offset"]]
        assert str(deepest) in problem["detail"]
        assert "cursor=" in problem["detail"] and "next_cursor" in problem["detail"]


async def test_the_limits_come_from_the_settings(serve: Serve, alice: TestUser, blog: Blog) -> None:
    post = await blog.post(alice)
    settings = SETTINGS.model_copy(update={"MAX_OFFSET": 3, "MAX_IN_VALUES": 2})
    custom = await serve(create_app(settings))
    assert ids(await custom.get(POSTS, params={"offset": 3})) == []
    assert_problem(await custom.get(POSTS, params={"offset": 4}), 422)
    two = f"{post['id']},{ABSENT}"
    assert ids(await custom.get(POSTS, params={"id__in": two})) == [post["id"]]
    problem = assert_problem(await custom.get(POSTS, params={"id__in": f"{two},1"}), 422)
    assert error_locs(problem) == [["query", "id__in"]]


async def test_the_next_link_continues_by_cursor_where_offsets_stop(
    serve: Serve, alice: TestUser, blog: Blog
) -> None:
    """Following `Link: rel=next` walks every row, past MAX_OFFSET, without a 422."""
    created = [(await blog.post(alice, title=f"p{n}"))["id"] for n in range(7)]
    custom = await serve(create_app(SETTINGS.model_copy(update={"MAX_OFFSET": 3})))
    url: str | None = f"http://testserver{POSTS}?limit=2&sort=id"
    seen: list[int] = []
    while url is not None:
        response = await custom.get(url)
        assert response.status_code == 200, response.text
        seen += ids(response)
        links = dict(
            (rel.split('"')[1], target.strip().strip("<>"))
            for target, rel in (
                part.split(";")
                for part in response.headers.get("link", "").split(",")
                if ";" in part
            )
        )
        url = links.get("next")
    assert seen == sorted(created)


# `__in` lists: how long, and one statement whatever the length


async def test_an_in_list_over_max_in_values_is_422_naming_the_parameter(
    client: AsyncClient, alice: TestUser, blog: Blog
) -> None:
    post = await blog.post(alice)
    most = SETTINGS.MAX_IN_VALUES
    values = [str(post["id"]), *(str(ABSENT + i) for i in range(most - 1))]
    assert ids(await client.get(POSTS, params={"id__in": ",".join(values)})) == [post["id"]]
    over = [*values, str(ABSENT - 1)]
    for params in ({"id__in": ",".join(over)}, [("id__in", value) for value in over]):
        problem = assert_problem(await client.get(POSTS, params=params), 422, "validation-error")
        assert error_locs(problem) == [["query", "id__in"]]
        assert "id__in" in problem["detail"] and str(most) in problem["detail"]
    titles = ",".join(f"t{i}" for i in range(most + 1))
    problem = assert_problem(await client.get(POSTS, params={"title__in": titles}), 422)
    assert error_locs(problem) == [["query", "title__in"]]


async def test_in_lists_of_every_length_share_one_statement(
    app: FastAPI, client: AsyncClient, alice: TestUser, blog: Blog
) -> None:
    made = [(await blog.post(alice))["id"] for _ in range(3)]
    with counted_statements(app) as statements:
        for length in (1, 2, 3, 7, 50, SETTINGS.MAX_IN_VALUES):
            wanted = made[:length]
            values = [*wanted, *range(ABSENT, ABSENT + length - len(wanted))]
            params = {"sort": "id", "id__in": ",".join(map(str, values))}
            assert ids(await client.get(POSTS, params=params)) == wanted
    pages = {sql for sql in statements if "ORDER BY" in sql}
    assert len(pages) == 1, pages


async def test_in_lists_match_values_as_the_column_stores_them(
    app: FastAPI, client: AsyncClient, alice: TestUser, blog: Blog
) -> None:
    """Datetimes in any offset, booleans, text longer than the column: one statement per
    filter for every length, comparing what the scalar filters compare."""
    long = (await blog.post(alice, title="x" * 200))["id"]
    draft = (await blog.post(alice, title="short", published=False))["id"]
    created = datetime.fromisoformat((await client.get(f"{POSTS}/{long}")).json()["created_at"])
    plus_two = created.astimezone(timezone(timedelta(hours=2))).isoformat()
    minus_five = created.astimezone(timezone(timedelta(hours=-5))).isoformat()

    shapes: dict[str, set[str]] = {}

    async def listed(**params: str) -> list[int]:
        with counted_statements(app) as statements:
            response = await client.get(
                POSTS, params={"sort": "id", **params}, headers=alice.headers
            )
        pages = {sql for sql in statements if "ORDER BY" in sql}  # not the count after none
        shapes.setdefault(",".join(params), set()).update(pages)
        return ids(response)

    assert await listed(created_at__in=plus_two) == [long]
    assert await listed(created_at__in=f"2001-01-01T00:00:00Z,{minus_five}") == [long]
    assert await listed(published__in="false") == [draft]
    assert await listed(published__in="true,false") == [long, draft]
    assert await listed(title__in="short") == [draft]
    assert await listed(title__in=f"{'x' * 200},short,none") == [long, draft]
    assert await listed(title__in="x" * 201) == []  # not cut to the column's length
    assert await listed(title__in="") == []
    assert {name: len(sql) for name, sql in shapes.items()} == {
        "created_at__in": 1,
        "published__in": 1,
        "title__in": 1,
    }
    too_large = await client.get(POSTS, params={"id__in": f"{long},{2**63}"})
    assert_problem(too_large, 422)


def bound(kind: TypeEngine[Any], dialect: Dialect, values: list[Any]) -> Any:
    """What the driver gets for an `__in` list of these values."""
    process = ValueList(kind).bind_processor(dialect)
    assert process is not None
    return process(values)


def test_sqlite_gets_an_in_list_as_json_of_the_values_as_stored() -> None:
    sqlite, postgresql = SQLiteDialect_pysqlite(), PGDialect_psycopg()
    moment = datetime(2026, 1, 2, 5, 4, 5, 6, tzinfo=timezone(timedelta(hours=2)))
    assert bound(UTCDateTime(), sqlite, [moment]) == '["2026-01-02 03:04:05.000006"]'
    assert bound(Boolean(), sqlite, [True, False]) == "[1, 0]"
    assert bound(Numeric(12, 2), sqlite, [Decimal("1.50")]) == "[1.5]"
    # JSON has no NaN or infinity: NaN equals nothing (SQLite binds it as NULL), 1e999 is inf.
    assert bound(Float(), sqlite, [1.5, math.nan, -math.inf]) == "[1.5,null,-1e999]"
    with pytest.raises(OverflowError):
        bound(Integer(), sqlite, [1, 2**63])
    assert bound(UTCDateTime(), postgresql, [moment]) == [moment]  # an array, as it is


def test_a_list_plan_does_not_depend_on_the_length_of_an_in_list() -> None:
    repository = Repository(posts)
    query, planner = ListQuery(posts, repository.relations), ListPlanner(posts)
    plans, statements = set(), set()
    for length in range(SETTINGS.MAX_IN_VALUES + 1):
        sent = QueryParams({"id__in": ",".join(str(i) for i in range(1, length + 1))})
        params = query.parse(sent, SETTINGS.MAX_OFFSET, SETTINGS.MAX_IN_VALUES)
        plan = planner.plan(params, Viewer(id=None), {}).plan
        plans.add(plan)
        statements.add(id(repository.statements.offset_page(plan)))
    assert len(plans) == 1 and len(statements) == 1


# sort


def test_default_sort_fields_are_the_columns_an_index_leads() -> None:
    table = Table(
        "sortable",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("indexed", Integer, index=True),
        Column("unique", String(10), unique=True),
        Column("first", Integer),
        Column("second", Integer),
        Column("lowered", String(10)),
        Column("plain", String(10)),
    )
    Index("ix_sortable_first_second", table.c.first, table.c.second)
    Index("ix_sortable_lowered", func.lower(table.c.lowered))
    assert index_leaders(table) == {"id", "indexed", "unique", "first"}
    # Comments declare no sort fields: their body and timestamps have no index.
    assert comments.sort_fields == ("id", "post_id", "author_id")


def test_a_default_sort_outside_the_sort_fields_is_refused() -> None:
    with pytest.raises(ValueError, match="default_sort '-created_at' is not in sort_fields"):
        Resource(
            plural="unsortable",
            table=Comment,
            create=CommentCreate,
            update=CommentUpdate,
            public=CommentPublic,
            owner_field="author_id",
            default_sort="-created_at",
        )


@pytest.mark.parametrize(
    ("url", "sort", "allowed"),
    [
        (COMMENTS, "created_at", "id, post_id, author_id"),
        (COMMENTS, "-body", "id, post_id, author_id"),
        (POSTS, "content", "created_at, votes, id, owner_id"),
        (POSTS, "-votes,title", "created_at, votes, id, owner_id"),
        (POSTS, "updated_at", "created_at, votes, id, owner_id"),
    ],
)
async def test_a_sort_by_an_unindexed_column_is_422_listing_the_allowed_ones(
    client: AsyncClient, url: str, sort: str, allowed: str
) -> None:
    field = sort.split(",")[-1].removeprefix("-")
    problem = assert_problem(await client.get(url, params={"sort": sort}), 422)
    assert error_locs(problem) == [["query"]]
    message = problem["errors"][0]["msg"]
    assert f"cannot sort by {field!r}; allowed: {allowed}" in message, message


@pytest.mark.parametrize("sort", ["id,id", "-votes,votes", "created_at,votes,-created_at"])
async def test_a_field_named_twice_in_sort_is_422(client: AsyncClient, sort: str) -> None:
    problem = assert_problem(await client.get(POSTS, params={"sort": sort}), 422)
    assert "twice" in problem["errors"][0]["msg"]


# the statements kept per shape


def post_plans(filters: int) -> Iterator[ListPlan]:
    """Distinct list plans of posts, each with this many filters."""
    query, planner = ListQuery(posts, resolve(posts)), ListPlanner(posts)
    samples = {int: "1", str: "a", bool: "true", datetime: "2026-01-01T00:00:00Z"}
    values = {}
    for param, (field, operator) in planner.filters.items():
        flag = operator.value == "flag"
        values[param] = "true" if flag else samples[python_type(posts, field)]
    for chosen in itertools.combinations(sorted(values), filters):
        sent = QueryParams({param: values[param] for param in chosen})
        params = query.parse(sent, SETTINGS.MAX_OFFSET, SETTINGS.MAX_IN_VALUES)
        yield planner.plan(params, Viewer(id=None), {}).plan


def test_the_statements_kept_for_list_shapes_stay_within_their_byte_budget() -> None:
    repository = Repository(posts)
    plans = list(itertools.islice(post_plans(30), 400))
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for plan in plans:
            repository.statements.offset_page(plan)
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert repository.statements.shapes.size <= MAX_SHAPE_BYTES
    assert kept <= MAX_SHAPE_BYTES, f"{kept:,} bytes kept"


def test_a_hot_list_statement_outlives_a_flood_of_new_shapes() -> None:
    repository = Repository(posts)
    hot_plan = next(post_plans(0))
    hot = repository.statements.offset_page(hot_plan)
    flood = 600
    for index, plan in enumerate(itertools.islice(post_plans(2), flood)):
        repository.statements.offset_page(plan)
        if index % 50 == 0:
            assert repository.statements.offset_page(hot_plan) is hot, index
    assert repository.statements.offset_page(hot_plan) is hot
    assert len(repository.statements.shapes) < flood
