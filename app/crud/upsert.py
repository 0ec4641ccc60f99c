"""Upserts on a resource's natural key (`Resource.upsert_key`): create the row, or replace it.

One statement, `INSERT ... ON CONFLICT (key) DO UPDATE SET ... WHERE <the caller may write the
existing row>`, on both databases: concurrent upserts of one key cannot both insert, and a row
someone else may write is never overwritten (403 when the caller can see it, else 409). The
owner and `created_at` stay the first writer's; `version` counts the replacements, so version
1 in the answer means the row was created. `If-Match` makes it a conditional replace of an
existing row; `If-None-Match: *` a create that refuses an existing one (412 both).
"""

from collections.abc import Sequence
from typing import Any

import psycopg
from sqlalchemy import Insert, Select, and_, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from app.core.connections import Connection
from app.core.db import utcnow
from app.core.errors import Conflict, Forbidden, PreconditionFailed, ProblemError
from app.crud import binds
from app.crud.access import ViewerKind, symbolic_viewer, viewer_kind
from app.crud.bulk import at_index, check_parents, refusal_at, several_refusals
from app.crud.expand import Expansion
from app.crud.integrity import reject_nul
from app.crud.paging import Item
from app.crud.repository import Repository
from app.crud.resource import Viewer

KEPT = ("created_at", "version")  # a replace keeps these (and the owner) from the first write


class Upserts:
    def __init__(self, repository: Repository) -> None:
        self.repository = repository
        resource = repository.resource
        assert resource.upsert_key is not None
        [self.key] = resource.upsert_key
        self.table = repository.table
        self.access = repository.access
        self.kept = (*KEPT, resource.owner_field or "", self.key)
        self.finders: dict[ViewerKind, Select[Any]] = {}

    def statement(self, dialect: str, names: tuple[str, ...], kind: ViewerKind) -> Insert:
        dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = dialect_insert(self.table).values(
            {
                name: bindparam(binds.column_value(name), type_=self.table.c[name].type)
                for name in names
            }
        )
        return self._on_conflict(statement, names, kind)

    def _on_conflict(
        self,
        statement: postgresql.Insert | sqlite.Insert,
        names: tuple[str, ...],
        kind: ViewerKind,
    ) -> Insert:
        """... ON CONFLICT (key) DO UPDATE the written columns WHERE the viewer may write it."""
        changes: dict[str, Any] = {
            name: statement.excluded[name] for name in names if name not in self.kept
        }
        changes["version"] = self.table.c.version + 1
        viewer = symbolic_viewer(kind)
        return statement.on_conflict_do_update(
            index_elements=[self.table.c[self.key]],
            set_=changes,
            where=and_(self.access.visible(viewer), self.access.writable(viewer)),
        )

    async def upsert(
        self,
        connection: Connection,
        values: Item,
        viewer: Viewer,
        tags: Sequence[int] | None,
        create_only: bool,
        expansion: Expansion,
    ) -> tuple[Item, str, bool]:
        """The row's representation, its ETag and whether it was created."""
        repository = self.repository
        if create_only:  # If-None-Match: *
            try:
                item, etag = await repository.insert(connection, values, viewer, expansion)
            except (IntegrityError, psycopg.IntegrityError):
                raise PreconditionFailed(self._exists_message(values)) from None
            return item, etag, True
        if tags is not None:  # If-Match: replace the row that has one of these tags
            found = await self._find(connection, values[self.key], viewer)
            if found is None:
                raise PreconditionFailed(f"No {repository.resource.name} has this If-Match tag")
            changes = {name: value for name, value in values.items() if name != self.key}
            item, etag = await repository.change(
                connection, found["id"], changes, viewer, tags, expansion
            )
            return item, etag, False
        reject_nul(values, "body")
        await repository.check_parents(connection, values, viewer)
        row_values = {**values, **self._server_values(viewer)}
        names, kind = tuple(row_values), viewer_kind(viewer)
        row = await repository.write_returning(
            connection,
            ("upsert", kind, names),
            lambda: self.statement(connection.dialect_name, names, kind),
            {binds.column_value(name): value for name, value in row_values.items()},
            row_values,
            viewer,
            expansion.to_one,
        )
        if row is None:
            await self._explain_refusal(connection, values[self.key], viewer)
        assert row is not None
        item, etag = await repository.represent(connection, row, viewer, expansion)
        return item, etag, row["version"] == 1

    def statement_all(
        self, varying: tuple[str, ...], common: tuple[str, ...], kind: ViewerKind
    ) -> Insert:
        """PostgreSQL: many rows in one statement (`ResourceStatements.rows_of`)."""
        rows = self.repository.statements.rows_of(varying, common)
        statement = postgresql.insert(self.table).from_select([*varying, *common], rows)
        return self._on_conflict(statement, (*varying, *common), kind)

    async def upsert_many(
        self, connection: Connection, rows: Sequence[Item], viewer: Viewer, expansion: Expansion
    ) -> list[tuple[Item, str, bool]]:
        """Every row created or replaced, or none: refusals (403, 409) named by index. The
        keys must differ (one statement cannot write a row twice)."""
        if connection.dialect_name != "postgresql":
            written = []
            for index, values in enumerate(rows):
                with at_index(index):
                    written.append(
                        await self.upsert(connection, values, viewer, None, False, expansion)
                    )
            return written
        repository = self.repository
        for index, values in enumerate(rows):
            with at_index(index):
                reject_nul(values, "body")
        await check_parents(repository, connection, rows, viewer)
        common = self._server_values(viewer)
        varying, constant, kind = tuple(rows[0]), tuple(common), viewer_kind(viewer)
        statement = repository.statements.written(
            ("upsert-all", kind, varying, constant),
            lambda: self.statement_all(varying, constant, kind),
            kind,
            expansion.to_one,
        )
        params = {binds.column_value(name): [row[name] for row in rows] for name in varying}
        params |= {binds.column_value(name): value for name, value in common.items()}
        found = await connection.rows(statement, {**params, binds.VIEWER_ID: viewer.id})
        by_key = {row[self.key]: row for row in found}
        refusals = []
        for index, values in enumerate(rows):
            if values[self.key] not in by_key:
                try:
                    await self._explain_refusal(connection, values[self.key], viewer)
                except ProblemError as error:
                    refusals.append(refusal_at(index, error))
        if refusals:
            raise several_refusals(refusals)
        written = []
        for values in rows:
            row = by_key[values[self.key]]
            item, etag = await repository.represent(connection, row, viewer, expansion)
            written.append((item, etag, row["version"] == 1))
        return written

    def _server_values(self, viewer: Viewer) -> Item:
        """What the server sets on a new row: timestamps, version 1, the owner."""
        now = utcnow()
        values: Item = {"created_at": now, "updated_at": now, "version": 1}
        if self.repository.resource.owner_field:
            values[self.repository.resource.owner_field] = viewer.id
        return values

    async def _find(self, connection: Connection, value: Any, viewer: Viewer) -> Any:
        """The visible row with this key (with whether the viewer may write it), or None."""
        kind = viewer_kind(viewer)
        if kind not in self.finders:
            symbolic = symbolic_viewer(kind)
            key = self.table.c[self.key]
            self.finders[kind] = select(
                self.table.c.id, self.access.writable(symbolic).label("writable")
            ).where(key == bindparam("key", type_=key.type), self.access.visible(symbolic))
        values = {"key": value, binds.VIEWER_ID: viewer.id}
        return await connection.row(self.finders[kind], values)

    async def _explain_refusal(self, connection: Connection, value: Any, viewer: Viewer) -> None:
        """The upsert's DO UPDATE was refused: someone else's row holds the key."""
        found = await self._find(connection, value, viewer)
        if found is not None and not found["writable"]:
            raise Forbidden(f"You may not change this {self.repository.resource.name}")
        raise Conflict(self._exists_message({self.key: value}), slug="unique-violation")

    def _exists_message(self, values: Item) -> str:
        return f"A {self.repository.resource.name} with this {self.key} already exists"
