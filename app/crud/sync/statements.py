"""The change-feed statement of one resource, built once per kind of viewer and round.

One statement reads, in one snapshot: the snapshot's floor (the next token's `since`), the
changes after the token's position in (stamp, id) order (rows, and tombstones unless it is
the initial round), and each changed row's representation if the viewer may see it. A
changed row the viewer may not see comes back without one: a tombstone for that viewer.
"""

from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    false,
    literal,
    not_,
    or_,
    select,
    true,
    tuple_,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from app.crud import binds
from app.crud.access import Access, ViewerKind, symbolic_viewer
from app.crud.projection import Projection
from app.crud.resource import Resource
from app.crud.sync.schema import SYNC_COLUMN, SyncTombstone

FLOOR = "_sync_floor"
STAMP = "_sync_stamp"
ROW_ID = "_sync_row"
GONE = "_sync_gone"


class SnapshotFloor(FunctionElement[int]):
    """The lowest stamp a change not yet visible to this statement can carry."""

    type = BigInteger()
    inherit_cache = True
    name = "snapshot_floor"


@compiles(SnapshotFloor, "postgresql")
def _postgresql_floor(element: SnapshotFloor, compiler: SQLCompiler, **kw: Any) -> str:
    # Every transaction below the snapshot's xmin has ended: its changes are visible here.
    return "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"


@compiles(SnapshotFloor, "sqlite")
def _sqlite_floor(element: SnapshotFloor, compiler: SQLCompiler, **kw: Any) -> str:
    return "(coalesce((SELECT value FROM sync_clock WHERE id = 1), 0) + 1)"


class Latest(FunctionElement[int]):
    """The greatest of some stamps (a row's and its visibility parents')."""

    type = BigInteger()
    inherit_cache = True
    name = "latest"


@compiles(Latest, "postgresql")
def _postgresql_latest(element: Latest, compiler: SQLCompiler, **kw: Any) -> str:
    return f"greatest({compiler.process(element.clauses, **kw)})"


@compiles(Latest, "sqlite")
def _sqlite_latest(element: Latest, compiler: SQLCompiler, **kw: Any) -> str:
    return f"max({compiler.process(element.clauses, **kw)})"


class ChangeStatements:
    def __init__(self, resource: Resource, access: Access, projection: Projection) -> None:
        self.resource = resource
        self.access = access
        self.projection = projection
        self.table = resource.sa_table
        self.built: dict[tuple[ViewerKind, bool], Select[Any]] = {}

    def changes(self, kind: ViewerKind, initial: bool) -> Select[Any]:
        key = (kind, initial)
        if key not in self.built:
            self.built[key] = self._changes(kind, initial)
        return self.built[key]

    def _after_position(self, stamp: ColumnElement[int], row_id: ColumnElement[int]) -> Any:
        position = tuple_(
            bindparam(binds.SYNC_STAMP, type_=BigInteger),
            bindparam(binds.SYNC_ROW, type_=BigInteger),
        )
        return tuple_(stamp, row_id) > position

    def _changed_rows(self, initial: bool, visible: ColumnElement[bool]) -> Select[Any]:
        """(id, stamp) of the rows changed after the position. A row whose visibility is
        inherited has also changed when its parent has: its stamp is the later of the two."""
        own = self.table.c[SYNC_COLUMN]
        if initial:  # every visible row once, in the order of the (sync_xid, id) index
            return select(self.table.c.id, own.label("x")).where(
                visible, self._after_position(own, self.table.c.id)
            )
        from_clause: Any = self.table
        stamps: list[ColumnElement[int]] = [own]
        for parent in self.resource.parents:
            if parent.inherits_visibility:
                parents = parent.resource.sa_table.alias(f"parent_{parent.field}")
                from_clause = from_clause.outerjoin(
                    parents, self.table.c[parent.field] == parents.c.id
                )
                stamps.append(parents.c[SYNC_COLUMN])
        stamp = Latest(*stamps) if len(stamps) > 1 else own
        # Each stamp is at least the position's (an index condition per table).
        floor = bindparam(binds.SYNC_STAMP, type_=BigInteger)
        return (
            select(self.table.c.id, stamp.label("x"))
            .select_from(from_clause)
            .where(
                or_(*(column >= floor for column in stamps)),
                self._after_position(stamp, self.table.c.id),
            )
        )

    def _changes(self, kind: ViewerKind, initial: bool) -> Select[Any]:
        visible = self.access.visible(symbolic_viewer(kind))
        rows = self._changed_rows(initial, visible).add_columns(false().label("gone"))
        if initial:
            changed_query: Any = rows
        else:
            tombstones = SyncTombstone.__table__  # type: ignore[attr-defined]  # SQLModel's table
            gone = select(tombstones.c.row_id, tombstones.c.xid, true()).where(
                tombstones.c.resource == self.table.name,
                self._after_position(tombstones.c.xid, tombstones.c.row_id),
            )
            changed_query = union_all(rows, gone)
        changed = (
            changed_query.order_by("x", "id")
            .limit(bindparam(binds.LIMIT, type_=Integer))
            .cte("changed")
        )
        from_clause, columns = self.projection.joined(self.table, kind)
        represented = changed.outerjoin(
            from_clause, and_(self.table.c.id == changed.c.id, not_(changed.c.gone), visible)
        )
        snapshot = select(SnapshotFloor().label(FLOOR)).subquery("snapshot")
        return (
            select(
                snapshot.c[FLOOR],
                changed.c.x.label(STAMP),
                changed.c.id.label(ROW_ID),
                changed.c.gone.label(GONE),
                *columns,
            )
            .select_from(snapshot.outerjoin(represented, literal(True)))
            .order_by(changed.c.x, changed.c.id)
        )
