"""`Resource.count_limit`: offset pages count exactly up to the limit, then estimate.

Posts are served here by a fresh app whose posts resource counts at most 3 rows.
PostgreSQL answers past the limit with the planner's estimate; SQLite, which has none,
counts every row.
"""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from app.crud.resource import registry
from app.main import create_app
from tests.crud.conftest import Blog
from tests.factories import UserFactory

POSTS = "/api/v1/posts"
COUNT_LIMIT = 3


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
            assert body["total_estimated"] is True
            assert body["total"] > COUNT_LIMIT
        else:
            assert (body["total"], body["total_estimated"]) == (5, False)
    first = await page(limited, limit=2)
    assert [item["title"] for item in first["items"]] == ["post 4", "post 3"]
    assert first["next_cursor"] is not None  # a full page: more may follow
    last = await page(limited, limit=2, offset=4)
    assert [item["title"] for item in last["items"]] == ["post 0"]
    assert last["next_cursor"] is None
