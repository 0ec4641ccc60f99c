"""Conditional writes: the row a write may touch, with `If-Match` checked in the same WHERE.

An UPDATE or DELETE targets the row by id, visible to and writable by the caller, and (with
`If-Match`) carrying one of the tags' versions (the record's own part of a tag, app.crud.etag).
When it touches nothing, `explain_refusal` says why: 404, then 403, then 412.
"""

from collections.abc import Hashable, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    bindparam,
    false,
    or_,
    select,
)

from app.core.connections import Connection
from app.core.errors import Forbidden, NotFound, PreconditionFailed
from app.crud import binds
from app.crud.access import Access, ViewerKind, symbolic_viewer, viewer_kind
from app.crud.resource import Viewer

# How many If-Match tags a write checks (that changes the SQL); None: no If-Match.
TagCount = int | None


def tag_count(tags: Sequence[int] | None) -> TagCount:
    return None if tags is None else len(tags)


class ConditionalWrites:
    def __init__(self, access: Access) -> None:
        self.access = access
        self.table = access.resource.sa_table
        self.refusals: dict[Hashable, Select[Any]] = {}

    def target(self, kind: ViewerKind, tags: TagCount) -> list[ColumnElement[bool]]:
        """The WHERE clause of a write by a viewer of this kind with this many If-Match tags;
        `target_values` gives its values."""
        viewer = symbolic_viewer(kind)
        item_id = bindparam(binds.ITEM_ID, type_=Integer)
        clauses = [
            self.table.c.id == item_id,
            self.access.visible(viewer),
            self.access.writable(viewer),
        ]
        if tags is not None:
            clauses.append(or_(false(), *(self._matches(index) for index in range(tags))))
        return clauses

    @staticmethod
    def target_values(item_id: int, viewer: Viewer, tags: Sequence[int] | None) -> dict[str, Any]:
        values = {binds.ITEM_ID: item_id, binds.VIEWER_ID: viewer.id}
        for index, version in enumerate(tags or ()):
            values[binds.tag_version(index)] = version
        return values

    def _matches(self, index: int) -> ColumnElement[bool]:
        """The `index`-th If-Match tag's version."""
        return self.table.c.version == bindparam(binds.tag_version(index), type_=Integer)

    async def explain_refusal(self, connection: Connection, item_id: int, viewer: Viewer) -> None:
        """A conditional write touched nothing: raise why (404, then 403, then 412)."""
        kind = viewer_kind(viewer)
        statement = self.refusals.get(kind)
        if statement is None:
            symbolic = symbolic_viewer(kind)
            statement = self.refusals[kind] = select(
                self.access.writable(symbolic).label("writable")
            ).where(
                self.table.c.id == bindparam(binds.ITEM_ID, type_=Integer),
                self.access.visible(symbolic),
            )
        values = {binds.ITEM_ID: item_id, binds.VIEWER_ID: viewer.id}
        row = await connection.row(statement, values)
        name = self.access.resource.name
        if row is None:
            raise NotFound(f"{name} {item_id} not found")
        if not row["writable"]:
            raise Forbidden(f"You may not change this {name}")
        raise PreconditionFailed(f"{name} {item_id} has changed since the given If-Match tag")
