"""`Resource.count_limit`: offset pages count exactly up to the limit, then estimate.

Posts are served here by a fresh app whose posts resource counts at most 3 rows.
PostgreSQL answers past the limit with the planner's estimate; SQLite, which has none,
counts every row. The estimate is checked against the planner itself: EXPLAIN of the same
WHERE clause (what an anonymous caller sees, plus the filters), so a total that ignores the
filters, counts the rows or just reports "more than the limit" does not pass.
"""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import bindparam, text

from app.crud.resource import registry
from app.main import create_app
from tests.crud.conftest import Blog
from tests.factories import UserFactory

POSTS = "/api/v1/posts"
COUNT_LIMIT = 3
# What an anonymous caller's list matches: the published posts (app/models/post.py).
VISIBLE = "posts.published"


@pytest.fixture
async def limited(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[AsyncClient]:
    posts = next(resource for resource in registry if resource.plural == "posts")
    monkeypatch.setattr(posts, "count_limit", COUNT_LIMIT)
    application = create_app()  # its routers (and their statements) are built from the registry
    async with LifespanManager(application):
        transport = ASGITransport(app=application)
        async with AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


def estimates(app: FastAPI) -> bool:
    return app.state.engine.dialect.name == "postgresql"  # type: ignore[no-any-return]


async def page(client: AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get(POSTS, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert response.headers["x-total-count"] == str(body["total"])
    return body


async def planned(app: FastAPI, where: str, **values: Any) -> int:
    """The planner's row estimate for the posts matching `where` (PostgreSQL)."""
    explain = text(f"EXPLAIN (FORMAT JSON) SELECT posts.id FROM posts WHERE {where}")
    async with app.state.engine.connect() as connection:
        plan = (await connection.execute(explain, values)).scalar_one()
    return int(plan[0]["Plan"]["Plan Rows"])


async def counted(app: FastAPI, where: str, **values: Any) -> int:
    async with app.state.engine.connect() as connection:
        statement = text(f"SELECT count(*) FROM posts WHERE {where}")
        return int((await connection.execute(statement, values)).scalar_one())


async def test_at_most_the_limit_is_counted_exactly(
    limited: AsyncClient, users: UserFactory, blog: Blog
) -> None:
    alice = await users.create()
    for title in ("one", "two", "three"):
        await blog.post(alice, title=title)
    body = await page(limited, limit=2)
    assert (body["total"], body["total_estimated"]) == (3, False)
    assert len(body["items"]) == 2 and body["next_cursor"] is not None


async def test_past_the_limit_the_total_is_estimated_on_postgresql(
    app: FastAPI, limited: AsyncClient, users: UserFactory, blog: Blog
) -> None:
    alice = await users.create()
    for number in range(6):
        await blog.post(alice, title=f"post {number}", published=number != 5)
    filtered = await page(limited, title__in="post 0,post 1")
    assert (filtered["total"], filtered["total_estimated"]) == (2, False)
    for params in ({"limit": 2}, {"limit": 2, "offset": 50}):  # a page, and one past the end
        body = await page(limited, **params)
        if estimates(app):
            expected = max(await planned(app, VISIBLE), COUNT_LIMIT + 1)
            assert (body["total"], body["total_estimated"]) == (expected, True)
        else:
            assert (body["total"], body["total_estimated"]) == (5, False)
    first = await page(limited, limit=2)
    assert [item["title"] for item in first["items"]] == ["post 4", "post 3"]
    assert first["next_cursor"] is not None  # a full page: more may follow
    last = await page(limited, limit=2, offset=4)
    assert [item["title"] for item in last["items"]] == ["post 0"]
    assert last["next_cursor"] is None


async def test_the_estimate_is_the_planners_for_the_filtered_query(
    app: FastAPI, limited: AsyncClient, users: UserFactory, blog: Blog
) -> None:
    """With statistics that no longer match the table, the estimate is the planner's, for
    the same filters: neither the exact count, nor the unfiltered estimate, nor limit + 1."""
    alice, bob = await users.create(), await users.create()
    alices = [await blog.post(alice, title=f"alice {n}") for n in range(24)]
    for n in range(12):
        await blog.post(bob, title=f"bob {n}")
    for n in range(6):
        await blog.post(alice, title=f"draft {n}", published=False)
    if estimates(app):
        async with app.state.engine.begin() as connection:
            await connection.execute(text("ANALYZE posts"))
    # Half of Alice's posts go after the statistics were taken: the planner still counts them.
    async with app.state.engine.begin() as connection:
        delete = text("DELETE FROM posts WHERE id IN :ids").bindparams(
            bindparam("ids", expanding=True)
        )
        await connection.execute(delete, {"ids": [post["id"] for post in alices[:12]]})

    by_bob = f"{VISIBLE} AND posts.owner_id = CAST(:owner AS INTEGER)"
    cases: dict[str, tuple[dict[str, Any], str, dict[str, Any]]] = {
        "unfiltered": ({}, VISIBLE, {}),
        "by bob": ({"owner_id": bob.id}, by_bob, {"owner": bob.id}),
    }
    for name, (params, where, values) in cases.items():
        body = await page(limited, limit=2, **params)
        exact = await counted(app, where, **values)
        assert exact > COUNT_LIMIT, name
        if not estimates(app):
            assert (body["total"], body["total_estimated"]) == (exact, False), name
            continue
        estimate = await planned(app, where, **values)
        # Guards: the data must tell the right answer from the wrong ones.
        assert estimate not in (exact, COUNT_LIMIT + 1), (name, estimate)
        if params:
            assert estimate != await planned(app, VISIBLE), name
        expected = (max(estimate, COUNT_LIMIT + 1), True)
        assert (body["total"], body["total_estimated"]) == expected, (name, estimate, exact)
