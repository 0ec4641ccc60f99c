"""409 on unique conflicts and 422 on missing references raised by the database itself.

Posts and comments have no unique field, so this module declares a throw-away `widgets`
resource the way a module of app/models does, creates its table and mounts its routers on a
fresh app, as app/api/resources.py mounts the declared ones.
"""

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from pydantic import ConfigDict
from sqlalchemy import func, select
from sqlmodel import Field, SQLModel

from app.api.resources import VIEWERS
from app.crud.resource import Resource
from app.crud.router import build_routers
from app.crud.table import Versioned
from app.main import create_app
from tests.crud.formats import assert_problem, error_locs
from tests.factories import TestUser, UserFactory

WIDGETS = "/api/v1/widgets"


class WidgetCreate(SQLModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=50)
    maker_id: int | None = None


class WidgetUpdate(SQLModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=50)
    maker_id: int | None = None


class WidgetPublic(SQLModel):
    id: int
    name: str
    maker_id: int | None
    owner_id: int
    created_at: datetime
    updated_at: datetime


def declare_widget_table() -> Any:
    """Declared only while this module runs: every test's cleanup empties all of metadata."""

    class Widget(Versioned, table=True):
        __tablename__ = "test_widgets"

        id: int | None = Field(default=None, primary_key=True)
        name: str = Field(max_length=50, unique=True)
        owner_id: int = Field(foreign_key="users.id", ondelete="CASCADE")
        # Not declared as a Parent: only the database's foreign key checks it.
        maker_id: int | None = Field(default=None, foreign_key="users.id", ondelete="CASCADE")

    return Widget


@pytest.fixture(scope="module")
async def widgets_app(app: FastAPI) -> AsyncIterator[tuple[FastAPI, Any]]:
    table = declare_widget_table()
    resource = Resource(
        plural="widgets",
        table=table,
        create=WidgetCreate,
        update=WidgetUpdate,
        public=WidgetPublic,
        owner_field="owner_id",
    )
    async with app.state.engine.begin() as connection:
        await connection.run_sync(SQLModel.metadata.create_all, tables=[table.__table__])
    fresh = create_app()
    for router in build_routers(resource, VIEWERS):
        fresh.include_router(router, prefix="/api/v1")
    try:
        async with LifespanManager(fresh):
            yield fresh, table
    finally:
        async with app.state.engine.begin() as connection:
            await connection.run_sync(table.__table__.drop)
        SQLModel.metadata.remove(table.__table__)


@pytest.fixture
async def widgets(widgets_app: tuple[FastAPI, Any]) -> AsyncIterator[AsyncClient]:
    transport = ASGITransport(app=widgets_app[0])
    async with AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def stored_widgets(app: FastAPI, widgets_app: tuple[FastAPI, Any]) -> int:
    async with app.state.engine.connect() as connection:
        statement = select(func.count()).select_from(widgets_app[1])
        return (await connection.execute(statement)).scalar_one()  # type: ignore[no-any-return]


async def make(widgets: AsyncClient, user: TestUser, **body: Any) -> dict[str, Any]:
    response = await widgets.post(WIDGETS, json=body, headers=user.headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_create_with_a_taken_unique_value_is_409(
    app: FastAPI, widgets_app: Any, widgets: AsyncClient, users: UserFactory
) -> None:
    alice = await users.create()
    bob = await users.create()
    await make(widgets, alice, name="sprocket")
    await make(widgets, alice, name="gear")
    response = await widgets.post(WIDGETS, json={"name": "sprocket"}, headers=bob.headers)
    problem = assert_problem(response, 409, "unique-violation")
    assert error_locs(problem) == [["body", "name"]]
    assert await stored_widgets(app, widgets_app) == 2
    listed = await widgets.get(WIDGETS, params={"sort": "id"})
    assert [item["name"] for item in listed.json()["items"]] == ["sprocket", "gear"]


async def test_update_to_a_taken_unique_value_is_409_and_changes_nothing(
    widgets: AsyncClient, users: UserFactory
) -> None:
    alice = await users.create()
    await make(widgets, alice, name="sprocket")
    gear = await make(widgets, alice, name="gear")
    url = f"{WIDGETS}/{gear['id']}"
    response = await widgets.patch(url, json={"name": "sprocket"}, headers=alice.headers)
    problem = assert_problem(response, 409, "unique-violation")
    assert error_locs(problem) == [["body", "name"]]
    assert (await widgets.get(url)).json() == gear
    same = await widgets.patch(url, json={"name": "gear"}, headers=alice.headers)
    assert same.status_code == 200
    renamed = await widgets.patch(url, json={"name": "cog"}, headers=alice.headers)
    assert renamed.status_code == 200 and renamed.json()["name"] == "cog"


async def test_a_freed_unique_value_can_be_taken_again(
    widgets: AsyncClient, users: UserFactory
) -> None:
    alice = await users.create()
    sprocket = await make(widgets, alice, name="sprocket")
    deleted = await widgets.delete(f"{WIDGETS}/{sprocket['id']}", headers=alice.headers)
    assert deleted.status_code == 204
    assert (await make(widgets, alice, name="sprocket"))["name"] == "sprocket"


async def test_a_reference_to_a_missing_row_is_422_on_create(
    app: FastAPI, widgets_app: Any, widgets: AsyncClient, users: UserFactory
) -> None:
    alice = await users.create()
    made = await make(widgets, alice, name="ok", maker_id=alice.id)
    assert made["maker_id"] == alice.id
    response = await widgets.post(
        WIDGETS, json={"name": "orphan", "maker_id": alice.id + 1000}, headers=alice.headers
    )
    problem = assert_problem(response, 422, "missing-reference")
    assert error_locs(problem) == [["body", "maker_id"]]
    assert await stored_widgets(app, widgets_app) == 1


async def test_a_reference_to_a_missing_row_is_422_on_update(
    widgets: AsyncClient, users: UserFactory
) -> None:
    alice = await users.create()
    widget = await make(widgets, alice, name="ok")
    url = f"{WIDGETS}/{widget['id']}"
    response = await widgets.patch(url, json={"maker_id": alice.id + 1000}, headers=alice.headers)
    problem = assert_problem(response, 422, "missing-reference")
    assert error_locs(problem) == [["body", "maker_id"]]
    assert (await widgets.get(url)).json() == widget
