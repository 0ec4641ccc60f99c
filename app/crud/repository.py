"""Runs one resource's statements: get, page, create, update, delete.

Each method takes the worker's `Database` and opens what it needs itself: reads one autocommit
connection (on the read replica, when there is one and the caller did not just write),
single-statement writes one autocommit connection, writes of several statements (a parent
check, an Idempotency-Key, SQLite's write-then-read) one transaction.
"""

from collections.abc import Callable, Hashable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Insert, Update
from sqlalchemy.exc import IntegrityError

from app.core.connections import Connection, Row
from app.core.database import Database
from app.core.db import utcnow
from app.core.errors import NotFound
from app.crud import binds, idempotency
from app.crud.access import Access, viewer_kind
from app.crud.children import Children
from app.crud.conditional import tag_count
from app.crud.expand import NO_EXPANSION, Expansion
from app.crud.integrity import missing_reference, name_missing_reference, reject_nul, reject_nulls
from app.crud.paging import Item, PageReader, PageRows
from app.crud.plan import ListQuery
from app.crud.projection import Projection
from app.crud.relations import resolve
from app.crud.resource import Resource, Viewer
from app.crud.statements import ResourceStatements


@dataclass(frozen=True)
class ParentScope:
    """A nested list's parent: it must exist and be visible."""

    repository: "Repository"
    item_id: int


class Repository:
    def __init__(self, resource: Resource) -> None:
        self.resource = resource
        self.access = Access(resource)
        self.relations = resolve(resource)
        self.projection = Projection(resource, self.relations)
        self.children = Children(self.relations)
        self.statements = ResourceStatements(resource, self.access, self.projection)
        self.pages = PageReader(resource, self.statements, self.projection, self.children)
        self.conditional = self.statements.conditional
        self.table = self.projection.table
        self.parents = {parent.field: Repository(parent.resource) for parent in resource.parents}

    # -- reads ------------------------------------------------------------------------------

    async def get(
        self,
        db: Database,
        item_id: int,
        viewer: Viewer,
        expansion: Expansion = NO_EXPANSION,
        *,
        fresh: bool = True,
    ) -> tuple[Item, str]:
        """The representation and its ETag; 404 when missing or invisible to the viewer.
        Not `fresh`: a read replica may answer."""
        statement = self.statements.get(viewer_kind(viewer), expansion.to_one)

        async def read(connection: Connection) -> tuple[Item, str]:
            row = await connection.row(
                statement, {binds.ITEM_ID: item_id, binds.VIEWER_ID: viewer.id}
            )
            if row is None:
                raise NotFound(f"{self.resource.name} {item_id} not found")
            return await self.represent(connection, row, viewer, expansion)

        return await db.read(read, fresh=fresh)

    async def represent(
        self, connection: Connection, row: Row, viewer: Viewer, expansion: Expansion
    ) -> tuple[Item, str]:
        """One row as its representation, with the relations asked for, and its ETag."""
        item = self.projection.shape(row, expansion.to_one)
        [digests] = await self.children.nest(connection, [item], viewer, expansion)
        return item, self.projection.etag(row, expansion.to_one, digests)

    async def require_visible(self, connection: Connection, item_id: int, viewer: Viewer) -> None:
        """404 unless the row exists and the viewer may see it."""
        if not await self.exists_visible(connection, item_id, viewer):
            raise NotFound(f"{self.resource.name} {item_id} not found")

    async def exists_visible(self, connection: Connection, item_id: int, viewer: Viewer) -> bool:
        statement = self.statements.exists(viewer_kind(viewer))
        values = {binds.ITEM_ID: item_id, binds.VIEWER_ID: viewer.id}
        return await connection.row(statement, values) is not None

    async def page(
        self,
        db: Database,
        query: ListQuery,
        viewer: Viewer,
        parent: ParentScope | None = None,
        *,
        fresh: bool = True,
    ) -> PageRows:
        """One page by offset (with the total, in the same statement) or by keyset.

        A cursor page (`plan.keyset`) has no total. Past the resource's `count_limit` the
        total is the planner's estimate (`PageRows.estimated`). Not `fresh`: a read replica
        may answer.
        """

        async def read(connection: Connection) -> PageRows:
            if parent is not None:
                await parent.repository.require_visible(connection, parent.item_id, viewer)
            return await self.pages.read(connection, query, viewer)

        return await db.read(read, fresh=fresh)

    # -- writes -----------------------------------------------------------------------------

    @staticmethod
    def _write(db: Database, several: bool) -> AbstractAsyncContextManager[Connection]:
        """A transaction for writes of several statements, else one autocommit statement
        (on PostgreSQL a write and the read of its result are one statement)."""
        if several or db.pool is None:
            return db.transaction()
        return db.connect()

    async def create(
        self,
        db: Database,
        values: Item,
        viewer: Viewer,
        key: idempotency.Key | None = None,
        expansion: Expansion = NO_EXPANSION,
    ) -> tuple[Item, str]:
        """Insert a row; with an Idempotency-Key, a retry returns the first result."""
        several = key is not None or bool(self.resource.parents)
        async with self._write(db, several) as connection:
            if key is not None:
                replay = await idempotency.stored(connection, key)
                if replay is not None:
                    return replay
            item, etag = await self.insert(connection, values, viewer, expansion)
            if key is not None:
                await idempotency.remember(connection, key, item, etag)
        return item, etag

    async def insert(
        self, connection: Connection, values: Item, viewer: Viewer, expansion: Expansion
    ) -> tuple[Item, str]:
        """Insert one row on `connection` (a single create's, or one of a bulk create's)."""
        reject_nul(values, "body")
        now = utcnow()
        values = {**values, "created_at": now, "updated_at": now, "version": 1}
        if self.resource.owner_field:
            values[self.resource.owner_field] = viewer.id
        names = tuple(values)
        await self.check_parents(connection, values, viewer)
        row = await self.write_returning(
            connection,
            ("insert", names),
            lambda: self.statements.insert(names),
            {binds.column_value(name): value for name, value in values.items()},
            values,
            viewer,
            expansion.to_one,
        )
        assert row is not None
        return await self.represent(connection, row, viewer, expansion)

    async def update(
        self,
        db: Database,
        item_id: int,
        changes: Item,
        viewer: Viewer,
        tags: Sequence[int] | None = None,
        expansion: Expansion = NO_EXPANSION,
    ) -> tuple[Item, str]:
        """Apply `changes` atomically: the If-Match check is part of the UPDATE's WHERE."""
        async with self._write(db, bool(self.resource.parents)) as connection:
            return await self.change(connection, item_id, changes, viewer, tags, expansion)

    async def change(
        self,
        connection: Connection,
        item_id: int,
        changes: Item,
        viewer: Viewer,
        tags: Sequence[int] | None,
        expansion: Expansion,
    ) -> tuple[Item, str]:
        """Update one row on `connection`; 404, 403 or 412 when it may not."""
        reject_nulls(self.table, changes)
        reject_nul(changes, "body")
        kind, names, count = viewer_kind(viewer), tuple(changes), tag_count(tags)
        values = {binds.column_value(name): value for name, value in changes.items()}
        values[binds.column_value("updated_at")] = utcnow()
        values.update(self.conditional.target_values(item_id, viewer, tags))
        await self.check_parents(connection, changes, viewer)
        row = await self.write_returning(
            connection,
            ("update", kind, names, count),
            lambda: self.statements.update(kind, names, count),
            values,
            changes,
            viewer,
            expansion.to_one,
        )
        if row is None:
            await self.conditional.explain_refusal(connection, item_id, viewer)
        assert row is not None
        return await self.represent(connection, row, viewer, expansion)

    async def delete(
        self, db: Database, item_id: int, viewer: Viewer, tags: Sequence[int] | None = None
    ) -> None:
        async with db.connect() as connection:
            await self.remove(connection, item_id, viewer, tags)

    async def remove(
        self, connection: Connection, item_id: int, viewer: Viewer, tags: Sequence[int] | None
    ) -> None:
        """Delete one row on `connection`; 404, 403 or 412 when it may not."""
        statement = self.statements.delete(viewer_kind(viewer), tag_count(tags))
        values = self.conditional.target_values(item_id, viewer, tags)
        if await connection.row(statement, values) is None:
            await self.conditional.explain_refusal(connection, item_id, viewer)

    async def check_parents(
        self, connection: Connection, values: Mapping[str, Any], viewer: Viewer
    ) -> None:
        """Referenced parents must exist and be visible to the writer (else 422)."""
        for field, parent in self.parents.items():
            parent_id = values.get(field)
            if parent_id is not None and not await parent.exists_visible(
                connection, parent_id, viewer
            ):
                raise missing_reference(field, parent_id)

    async def write_returning(
        self,
        connection: Connection,
        key: Hashable,
        build: Callable[[], Insert | Update],
        params: Mapping[str, Any],
        values: Mapping[str, Any],
        viewer: Viewer,
        to_one: tuple[str, ...],
    ) -> Row | None:
        """Run the INSERT/UPDATE `build()` makes and read back the result (None: no row),
        with the to-one relations `to_one` as the writer sees them."""
        kind = viewer_kind(viewer)
        params = {**params, binds.VIEWER_ID: viewer.id}
        if connection.dialect_name == "postgresql":
            return await connection.row(self.statements.written(key, build, kind, to_one), params)
        try:
            written = await connection.row(self.statements.written_id(key, build), params)
        except IntegrityError as error:
            await name_missing_reference(connection, self.table, values, error)
            raise
        if written is None:
            return None
        read = self.statements.read_back(kind, to_one)
        return await connection.row(
            read, {binds.ITEM_ID: written["id"], binds.VIEWER_ID: viewer.id}
        )
