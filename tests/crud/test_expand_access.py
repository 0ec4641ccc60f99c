"""Access holds inside expansions: a nested row the caller could not GET is absent (a to-one
relation is null, a to-many one leaves it out), and `<name>_total` counts only what they could.

Three resources declared here cover every read policy as the target of a to-one and of a
to-many relation: shelves (public, with a visibility rule: unlisted ones are their owner's),
memos (read=owner, and visible only when their shelf is) and badges (read=authenticated);
viewers anonymous, another user, the owner and a superuser.
"""

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from pydantic import ConfigDict
from sqlalchemy import ColumnElement, or_
from sqlmodel import Field, Relationship, SQLModel, col

from app.crud.resource import Expand, Parent, Read, Resource, Viewer, register, registry
from app.crud.table import Versioned
from app.main import create_app
from tests.crud.test_cursor import flat_ids, walk
from tests.factories import TestUser, UserFactory

FORBID = ConfigDict(extra="forbid")


def declare() -> list[Resource]:
    class Shelf(Versioned, table=True):
        __tablename__ = "test_shelves"
        id: int | None = Field(default=None, primary_key=True)
        name: str
        listed: bool = True
        owner_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
        memos: list["Memo"] = Relationship(back_populates="shelf")
        badges: list["Badge"] = Relationship(back_populates="shelf")

    class ShelfCreate(SQLModel):
        model_config = FORBID
        name: str
        listed: bool = True

    class ShelfUpdate(SQLModel):
        model_config = FORBID
        listed: bool | None = None

    class ShelfPublic(SQLModel):
        id: int
        name: str
        listed: bool
        owner_id: int
        created_at: datetime
        updated_at: datetime

    def listed_shelves(table: Any, viewer: Viewer) -> ColumnElement[bool]:
        """Unlisted shelves are their owner's."""
        if viewer.id is None:
            return col(table.listed).is_(True)
        return or_(col(table.listed), col(table.owner_id) == viewer.id)

    class Memo(Versioned, table=True):
        __tablename__ = "test_memos"
        id: int | None = Field(default=None, primary_key=True)
        text: str
        shelf_id: int = Field(foreign_key="test_shelves.id", ondelete="CASCADE", index=True)
        owner_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
        shelf: Shelf = Relationship(back_populates="memos")

    class Badge(Versioned, table=True):
        __tablename__ = "test_badges"
        id: int | None = Field(default=None, primary_key=True)
        text: str
        shelf_id: int = Field(foreign_key="test_shelves.id", ondelete="CASCADE", index=True)
        owner_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
        shelf: Shelf = Relationship(back_populates="badges")

    class NoteCreate(SQLModel):
        model_config = FORBID
        text: str
        shelf_id: int

    class NoteUpdate(SQLModel):
        model_config = FORBID
        text: str | None = None

    class NotePublic(SQLModel):
        id: int
        text: str
        shelf_id: int
        owner_id: int

    shelves = Resource(
        table=Shelf,
        create=ShelfCreate,
        update=ShelfUpdate,
        public=ShelfPublic,
        owner_field="owner_id",
        visibility=listed_shelves,
        expand=(Expand("memos"), Expand("badges")),
    )
    notes: dict[str, Any] = {
        "create": NoteCreate,
        "update": NoteUpdate,
        "public": NotePublic,
        "owner_field": "owner_id",
        "parents": (Parent("shelf_id", shelves),),
        "expand": (Expand("shelf"),),
    }
    # Memos also need their shelf visible (a declared combination: owner rule + inherited).
    inherits = (Parent("shelf_id", shelves, inherits_visibility=True),)
    memos = Resource(table=Memo, read=Read.OWNER, **(notes | {"parents": inherits}))
    badges = Resource(table=Badge, read=Read.AUTHENTICATED, **notes)
    return [register(resource) for resource in (shelves, memos, badges)]


@pytest.fixture(scope="module")
async def declared(app: FastAPI) -> AsyncIterator[list[Resource]]:
    resources = declare()
    tables = [resource.sa_table for resource in resources]
    try:
        async with app.state.engine.begin() as connection:
            await connection.run_sync(SQLModel.metadata.create_all, tables=tables)
        yield resources
    finally:
        async with app.state.engine.begin() as connection:
            for table in reversed(tables):
                await connection.run_sync(table.drop, checkfirst=True)
        for resource in resources:
            SQLModel.metadata.remove(resource.sa_table)
            registry.remove(resource)


@pytest.fixture(scope="module")
async def api(declared: list[Resource]) -> AsyncIterator[AsyncClient]:
    application = create_app()
    async with LifespanManager(application):
        transport = ASGITransport(app=application)
        async with AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


class Scene:
    def __init__(self, api: AsyncClient, users: UserFactory) -> None:
        self.api, self.users = api, users
        self.ids: dict[str, int] = {}

    async def make(self, key: str, path: str, user: TestUser, **body: Any) -> None:
        response = await self.api.post(f"/api/v1/{path}", json=body, headers=user.headers)
        assert response.status_code == 201, response.text
        self.ids[key] = response.json()["id"]

    async def read(self, url: str, user: TestUser | None) -> Any:
        response = await self.api.get(url, headers=user.headers if user else None)
        assert response.status_code == 200, (url, response.text)
        return response.json()


@pytest.fixture
async def scene(api: AsyncClient, users: UserFactory) -> tuple[Scene, dict[str, Any]]:
    """Alice's listed shelf `open` and unlisted shelf `own`; memos and badges on them by
    Alice and Bob."""
    scene = Scene(api, users)
    people: dict[str, Any] = {
        "anonymous": None,
        "bob": await users.create(),
        "alice": await users.create(),
        "admin": await users.create(superuser=True),
    }
    alice, bob = people["alice"], people["bob"]
    await scene.make("open", "test_shelves", alice, name="open")
    await scene.make("own", "test_shelves", alice, name="hidden", listed=False)
    for kind in ("test_memos", "test_badges"):
        await scene.make(f"{kind}:alice", kind, alice, text="a", shelf_id=scene.ids["open"])
        await scene.make(f"{kind}:bob", kind, bob, text="b", shelf_id=scene.ids["open"])
        await scene.make(f"{kind}:own", kind, alice, text="o", shelf_id=scene.ids["own"])
    return scene, people


# (viewer) -> what `GET /test_shelves/{open}?expand=memos,badges` nests: memos are their
# owner's (a superuser sees all), badges any signed-in user's.
TO_MANY = {
    "anonymous": ([], []),
    "bob": (["test_memos:bob"], ["test_badges:alice", "test_badges:bob"]),
    "alice": (["test_memos:alice"], ["test_badges:alice", "test_badges:bob"]),
    "admin": (["test_memos:alice", "test_memos:bob"], ["test_badges:alice", "test_badges:bob"]),
}


@pytest.mark.parametrize("viewer", TO_MANY)
async def test_to_many_relations_nest_and_count_only_what_the_viewer_may_read(
    scene: tuple[Scene, dict[str, Any]], viewer: str
) -> None:
    world, people = scene
    url = f"/api/v1/test_shelves/{world.ids['open']}?expand=memos,badges"
    body = await world.read(url, people[viewer])
    memos, badges = TO_MANY[viewer]
    assert [item["id"] for item in body["memos"]] == [world.ids[name] for name in memos]
    assert [item["id"] for item in body["badges"]] == [world.ids[name] for name in badges]
    assert (body["memos_total"], body["badges_total"]) == (len(memos), len(badges))
    listed = await world.read("/api/v1/test_shelves?expand=memos,badges", people[viewer])
    [open_shelf] = [item for item in listed["items"] if item["id"] == world.ids["open"]]
    assert open_shelf["memos"] == body["memos"] and open_shelf["badges"] == body["badges"]


# (kind, viewer) -> the rows a memo or badge list shows, and the shelf each nests (None: null,
# the viewer may not read it). Alice unlisted `open` after Bob wrote on it: Bob's memo on it
# went with it, his badge stays.
ALL_ROWS = {"alice": "open", "bob": "open", "own": "own"}
TO_ONE = {
    ("test_memos", "bob"): {},
    ("test_memos", "alice"): {"alice": "open", "own": "own"},
    ("test_memos", "admin"): ALL_ROWS,
    ("test_badges", "bob"): {"alice": None, "bob": None, "own": None},
    ("test_badges", "alice"): ALL_ROWS,
    ("test_badges", "admin"): ALL_ROWS,
}


@pytest.mark.parametrize(("kind", "viewer"), TO_ONE)
async def test_a_to_one_relation_the_viewer_may_not_read_is_null(
    scene: tuple[Scene, dict[str, Any]], kind: str, viewer: str
) -> None:
    world, people = scene
    unlisted = await world.api.patch(
        f"/api/v1/test_shelves/{world.ids['open']}",
        json={"listed": False},
        headers=people["alice"].headers,
    )
    assert unlisted.status_code == 200, unlisted.text
    page = await world.read(f"/api/v1/{kind}?expand=shelf&sort=id", people[viewer])
    shown = {item["id"]: item["shelf"] for item in page["items"]}
    expected = TO_ONE[kind, viewer]
    by_id = {world.ids[f"{kind}:{row}"]: shelf for row, shelf in expected.items()}
    assert set(shown) == set(by_id)
    for item_id, shelf in by_id.items():
        nested = shown[item_id]
        assert (nested and nested["id"]) == (world.ids[shelf] if shelf else None), item_id
    for item_id in by_id:
        single = await world.read(f"/api/v1/{kind}/{item_id}?expand=shelf", people[viewer])
        assert single["shelf"] == shown[item_id]
    if viewer == "bob":  # a write's answer follows the same rule
        mine = world.ids[f"{kind}:bob"]
        written = await world.api.patch(
            f"/api/v1/{kind}/{mine}?expand=shelf",
            json={"text": "edited"},
            headers=people["bob"].headers,
        )
        if kind == "test_memos":  # invisible with its shelf: as if it did not exist
            assert written.status_code == 404, written.text
        else:
            assert written.status_code == 200, written.text
            assert written.json()["shelf"] is None


async def test_a_filter_on_a_relation_matches_only_rows_the_viewer_may_read(
    scene: tuple[Scene, dict[str, Any]],
) -> None:
    """Bob may read every badge, but not Alice's unlisted shelf: filtering badges by its name
    must not tell him what is on it."""
    world, people = scene
    url = "/api/v1/test_badges?shelf.name=hidden"
    assert (await world.read(url, people["bob"]))["items"] == []
    [badge] = (await world.read(url, people["alice"]))["items"]
    assert badge["id"] == world.ids["test_badges:own"]


async def test_sorting_by_a_relation_orders_by_what_the_viewer_may_read(
    scene: tuple[Scene, dict[str, Any]],
) -> None:
    """To Bob, Alice's unlisted shelf has no name (NULL sorts last): the order must not tell
    him it is `hidden`, which sorts before `open`."""
    world, people = scene
    params = {"sort": "shelf.name", "limit": 2}
    order = {
        viewer: flat_ids(
            await walk(world.api, "/api/v1/test_badges", params, people[viewer].headers)
        )
        for viewer in ("alice", "bob")
    }
    own, a, b = (world.ids[f"test_badges:{row}"] for row in ("own", "alice", "bob"))
    assert order == {"alice": [own, a, b], "bob": [a, b, own]}
