"""SQL for one resource: every read is one statement, every write one transaction.

Statements are built once per *shape* (kind of viewer, filters sent, sort, paging mode,
columns written) with named bind parameters, and reused with each request's values: building
and cache-keying a SQLAlchemy statement per request cost more than running it.
"""

import operator
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    delete,
    false,
    func,
    insert,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.exc import IntegrityError

from app.core.db import utcnow
from app.core.errors import Forbidden, NotFound, PreconditionFailed, Unprocessable, field_error
from app.core.sql import Connection, Row
from app.crud.etag import Tag, format_etag
from app.crud.params import filter_params, parse_sort, python_type
from app.crud.resource import Read, Resource, Viewer, Write

EMBED_SEPARATOR = "__"
STAMP_PREFIX = "_stamp_"
MAX_SHAPES = 500  # per repository; past it the cache starts over (odd filter mixes are many)
LIKE_OPERATORS = ("contains", "startswith", "icontains")
COMPARISONS = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "lte": operator.le,
    "gt": operator.gt,
    "gte": operator.ge,
}


@dataclass
class Page:
    items: list[dict[str, Any]]
    total: int | None
    last_key: list[Any] | None  # sort values of the last row, when another page follows
    estimated: bool = False  # `total` is the planner's estimate (see Resource.count_limit)


@dataclass
class OffsetStatements:
    page: Select[Any]  # with the count as the `_total` column
    count: Select[Any]  # the count alone, for a page past the end
    matching: Select[Any]  # the matching rows' ids, to estimate or count them all


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _as_utc(value: Any) -> Any:
    """Filter datetimes in UTC; naive ones are taken as UTC."""
    if not isinstance(value, datetime):
        return value
    try:
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except OverflowError:
        raise Unprocessable(
            "A datetime filter is out of range in UTC",
            errors=[{"loc": ["query"], "msg": "datetime out of range", "type": "value_error"}],
        ) from None


def _condition(column: Any, op: str, name: str, shape: Any) -> ColumnElement[bool]:
    """A filter with bind parameters named after `name`; `shape` is what changes the SQL:
    the number of values for `in`, the asked state for `isnull`."""
    if op == "in":
        if shape == 0:  # an empty list matches nothing (and `in_([])` renders at execution)
            return false()
        return column.in_(  # type: ignore[no-any-return]
            [bindparam(f"{name}_{index}", type_=column.type) for index in range(shape)]
        )
    if op == "isnull":
        return column.is_(None) if shape else column.is_not(None)  # type: ignore[no-any-return]
    if op in LIKE_OPERATORS:
        pattern = bindparam(name, type_=String())
        if op == "icontains":
            return column.ilike(pattern, escape="\\")  # type: ignore[no-any-return]
        return column.like(pattern, escape="\\")  # type: ignore[no-any-return]
    return COMPARISONS[op](column, bindparam(name, type_=column.type))  # type: ignore[no-any-return]


def _condition_shape(op: str, value: Any) -> Any:
    return len(value) if op == "in" else bool(value) if op == "isnull" else None


def _condition_values(op: str, name: str, value: Any) -> dict[str, Any]:
    if op == "in":
        return {f"{name}_{index}": _as_utc(item) for index, item in enumerate(value)}
    if op == "isnull":
        return {}
    if op in LIKE_OPERATORS:
        pattern = _escape_like(value)
        return {name: f"{pattern}%" if op == "startswith" else f"%{pattern}%"}
    return {name: _as_utc(value)}


def viewer_kind(viewer: Viewer) -> str:
    return "superuser" if viewer.is_superuser else "anonymous" if viewer.id is None else "user"


def symbolic_viewer(kind: str) -> Viewer:
    """A viewer of this kind whose id is the `viewer_id` bind parameter."""
    viewer_id = None if kind == "anonymous" else bindparam("viewer_id", type_=Integer)
    return Viewer(id=viewer_id, is_superuser=kind == "superuser")


def missing_reference(field: str, value: Any) -> Unprocessable:
    return Unprocessable(
        f"{field} {value} does not exist",
        slug="missing-reference",
        errors=[field_error(field, "does not exist", "missing-reference")],
    )


def reject_nul(values: Mapping[str, Any], location: str) -> None:
    """NUL characters never reach the database (PostgreSQL refuses them, SQLite keeps them)."""
    errors = [
        {"loc": [location, name], "msg": "may not contain NUL characters", "type": "nul"}
        for name, value in values.items()
        if "\x00" in (value if isinstance(value, str) else "")
        or (isinstance(value, list) and any("\x00" in str(item) for item in value))
    ]
    if errors:
        raise Unprocessable("Text may not contain NUL characters", errors=errors)


class Repository:
    """Builds and runs the statements of one declared resource."""

    def __init__(self, resource: Resource) -> None:
        self.resource = resource
        self.table = resource.sa_table
        self.pk = self.table.c.id
        self.owner = self.table.c[resource.owner_field] if resource.owner_field else None
        self.filters = filter_params(resource)
        self.embeds = {embed.name: embed for embed in resource.embeds}
        self.public_fields = [
            name
            for name in resource.public.model_fields
            if name in self.embeds or name in self.table.c
        ]
        self._from, self.columns = self.joined(self.table)
        self.stamp_subqueries: list[Any] = []  # per embed: its updated_at, for the ETag
        for embed in resource.embeds:
            stamp_source = embed.table.__table__.alias()  # type: ignore[attr-defined]
            self.stamp_subqueries.append(
                select(stamp_source.c.updated_at)
                .where(stamp_source.c.id == self.table.c[embed.local_key])
                .scalar_subquery()
            )
        self._shapes: dict[Hashable, Any] = {}
        # Built once, not per write: a repository compiles its joins on construction.
        self.parents = {parent.field: Repository(parent.resource) for parent in resource.parents}

    def joined(self, base: Any) -> tuple[Any, list[Any]]:
        """FROM clause and columns of a read over `base` (the table, or the rows a write
        returned): its columns, each embed's columns and the embed's stamp for the ETag."""
        from_clause, columns = base, list(base.c)
        for embed in self.resource.embeds:
            alias = embed.table.__table__.alias(embed.name)  # type: ignore[attr-defined]
            from_clause = from_clause.outerjoin(alias, base.c[embed.local_key] == alias.c.id)
            columns += [
                alias.c[name].label(f"{embed.name}{EMBED_SEPARATOR}{name}")
                for name in embed.columns
            ]
            columns.append(alias.c.updated_at.label(STAMP_PREFIX + embed.name))
        return from_clause, columns

    def shaped(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """The statement built for this shape: `build()` the first time, then reused."""
        statement = self._shapes.get(key)
        if statement is None:
            if len(self._shapes) >= MAX_SHAPES:
                self._shapes.clear()
            statement = self._shapes[key] = build()
        return statement

    async def write_returning(
        self,
        connection: Connection,
        key: Hashable,
        build: Callable[[], Any],
        binds: Mapping[str, Any],
        values: Mapping[str, Any],
    ) -> Row | None:
        """Run the INSERT/UPDATE `build()` makes (once per `key`) and read back the result.

        On PostgreSQL in one statement (a data-modifying CTE joined to the embeds); elsewhere
        the write returns the id and a read by id follows in the same transaction.
        """
        if connection.dialect_name == "postgresql":

            def build_read() -> Any:
                written = build().returning(*self.table.c).cte("written")
                from_clause, columns = self.joined(written)
                return select(*columns).select_from(from_clause)

            return await connection.row(self.shaped(("written", key), build_read), binds)
        statement = self.shaped(("written-id", key), lambda: build().returning(self.pk))
        written_id = await self.execute_write(connection, statement, binds, values)
        if written_id is None:
            return None
        read = self.get_statement(Viewer(id=None, is_superuser=True))
        return await connection.row(read, {"item_id": written_id["id"]})

    # -- row access rules -------------------------------------------------------------------

    def visible(self, viewer: Viewer) -> ColumnElement[bool]:
        """Rows this viewer may see at all; the rest behave as if they did not exist."""
        if viewer.is_superuser:
            return true()
        clauses: list[ColumnElement[bool]] = []
        if self.resource.read is Read.OWNER and self.owner is not None:
            clauses.append(self.owner == viewer.id if viewer.id is not None else false())
        if self.resource.visibility is not None:
            rule = self.resource.visibility(self.resource.table, viewer)
            if rule is not None:
                clauses.append(rule)
        return and_(true(), *clauses)

    def writable(self, viewer: Viewer) -> ColumnElement[bool]:
        if viewer.is_superuser or self.resource.write is Write.AUTHENTICATED:
            return true()
        if self.resource.write is Write.OWNER and self.owner is not None:
            return self.owner == viewer.id
        return false()

    # -- reads ------------------------------------------------------------------------------

    def select(self) -> Select[Any]:
        return select(*self.columns).select_from(self._from)

    def shape(self, row: Row) -> dict[str, Any]:
        """A flat row with labelled embed columns -> the Public schema's fields, in its order."""
        item = {}
        for name in self.public_fields:
            embed = self.embeds.get(name)
            if embed is None:
                item[name] = row[name]
                continue
            nested = {column: row[f"{name}{EMBED_SEPARATOR}{column}"] for column in embed.columns}
            item[name] = nested if any(v is not None for v in nested.values()) else None
        return item

    def etag(self, row: Row) -> str:
        stamps = tuple(row[STAMP_PREFIX + embed.name] for embed in self.resource.embeds)
        return format_etag(row["version"], stamps)

    def get_statement(self, viewer: Viewer) -> Select[Any]:
        """Read by id, built once per kind of viewer with `item_id`/`viewer_id` binds."""
        kind = viewer_kind(viewer)
        return self.shaped(
            ("get", kind),
            lambda: self.select().where(
                self.pk == bindparam("item_id", type_=Integer), self.visible(symbolic_viewer(kind))
            ),
        )

    async def get(
        self, connection: Connection, item_id: int, viewer: Viewer
    ) -> tuple[dict[str, Any], str]:
        """The representation and its ETag; 404 when missing or invisible to the viewer."""
        params = {"item_id": item_id, "viewer_id": viewer.id}
        row = await connection.row(self.get_statement(viewer), params)
        if row is None:
            raise NotFound(f"{self.resource.name} {item_id} not found")
        return self.shape(row), self.etag(row)

    def page_filters(
        self, params: Mapping[str, Any], viewer: Viewer, scope: Mapping[str, Any]
    ) -> tuple[Hashable, dict[str, Any]]:
        """What shapes a list's WHERE clause, and the values of its bind parameters."""
        reject_nul(params, "query")
        sent, values = [], {"viewer_id": viewer.id}
        for param, value in params.items():
            if value is None or param not in self.filters:
                continue
            op = self.filters[param][1]
            sent.append((param, _condition_shape(op, value)))
            values.update(_condition_values(op, f"f_{param}", value))
        query = params.get("q")
        if query:
            values["q"] = f"%{_escape_like(query)}%"
        values.update({f"scope_{name}": value for name, value in scope.items()})
        return (viewer_kind(viewer), tuple(sent), bool(query), tuple(scope)), values

    def where(self, shape: Hashable) -> list[ColumnElement[bool]]:
        """The WHERE clause of a list of this shape (see `page_filters`)."""
        kind, sent, searched, scope = shape  # type: ignore[misc]
        clauses = [self.visible(symbolic_viewer(kind))]
        for param, condition_shape in sent:
            field, op = self.filters[param]
            clauses.append(_condition(self.table.c[field], op, f"f_{param}", condition_shape))
        if searched:
            pattern = bindparam("q", type_=String())
            columns = (self.table.c[name] for name in self.resource.search_fields)
            clauses.append(or_(*(column.ilike(pattern, escape="\\") for column in columns)))
        for name in scope:
            column = self.table.c[name]
            clauses.append(column == bindparam(f"scope_{name}", type_=column.type))
        return clauses

    def sort_keys(self, sort: str) -> list[tuple[str, bool]]:
        """The requested keys plus the primary key as tiebreaker (in the first key's direction)."""
        keys = parse_sort(sort, self.resource.sort_fields or ())
        if "id" not in (name for name, _ in keys):
            keys.append(("id", keys[0][1]))
        return keys

    def sort_kinds(self, sort: str) -> list[type]:
        return [python_type(self.resource, name) for name, _ in self.sort_keys(sort)]

    def order_by(self, keys: list[tuple[str, bool]]) -> list[Any]:
        """NULL sorts as the largest value on both databases (PostgreSQL's default)."""
        order = []
        for name, descending in keys:
            column = self.table.c[name]
            if not column.nullable:
                order.append(column.desc() if descending else column.asc())
            else:
                order.append(
                    column.desc().nulls_first() if descending else column.asc().nulls_last()
                )
        return order

    def after(self, keys: list[tuple[str, bool]], nulls: tuple[bool, ...]) -> ColumnElement[bool]:
        """Rows strictly after the cursor's `after_<i>` values in the order of `keys` (the
        keyset condition); `nulls` tells which of those values are NULL."""
        columns = [self.table.c[name] for name, _ in keys]
        bounds = [bindparam(f"after_{i}", type_=column.type) for i, column in enumerate(columns)]
        directions = {descending for _, descending in keys}
        nullable = any(column.nullable for column in columns)
        if len(directions) == 1 and not nullable:
            # A row-value comparison lets the database walk the (sort, id) index.
            left, right = tuple_(*columns), tuple_(*bounds)
            return left < right if directions == {True} else left > right
        branches = []
        for index, ((_, descending), column, bound, null) in enumerate(
            zip(keys, columns, bounds, nulls, strict=True)
        ):
            equal = [
                c.is_(None) if n else c == b
                for c, b, n in zip(columns[:index], bounds[:index], nulls[:index], strict=True)
            ]
            branches.append(and_(*equal, self._beyond(column, bound, null, descending)))
        return or_(*branches)

    @staticmethod
    def _beyond(column: Any, bound: Any, null: bool, descending: bool) -> ColumnElement[bool]:
        if null:  # NULL is the largest value
            return column.is_not(None) if descending else false()
        if descending:
            return column < bound  # type: ignore[no-any-return]
        after = column > bound
        return or_(after, column.is_(None)) if column.nullable else after

    async def page(
        self,
        connection: Connection,
        params: Mapping[str, Any],
        viewer: Viewer,
        *,
        scope: Mapping[str, Any] | None = None,
        after: list[Any] | None = None,
    ) -> Page:
        """One page by offset (with the total, in the same statement) or by keyset.

        `scope` pins columns to values (a nested list's parent id); `after` holds the sort
        values of a cursor, and then the total is not counted. Past the resource's
        `count_limit` the total is the planner's estimate (`Page.estimated`).
        """
        sort, limit = params["sort"], params["limit"]
        keys = self.sort_keys(sort)
        filters, values = self.page_filters(params, viewer, scope or {})
        estimated = False
        if after is not None:
            nulls = tuple(value is None for value in after)

            def build_keyset() -> Select[Any]:
                return (
                    self.select()
                    .where(*self.where(filters), self.after(keys, nulls))
                    .order_by(*self.order_by(keys))
                    .limit(bindparam("limit", type_=Integer))
                )

            values.update({f"after_{i}": value for i, value in enumerate(after)})
            values["limit"] = limit + 1
            statement = self.shaped(("keyset", filters, sort, nulls), build_keyset)
            rows = await connection.rows(statement, values)
            more = len(rows) > limit
            rows = rows[:limit]
            total = None
        else:
            statements: OffsetStatements = self.shaped(
                ("offset", filters, sort), lambda: self._offset_page(filters, keys)
            )
            values.update(limit=limit, offset=params["offset"] or 0)
            rows = await connection.rows(statements.page, values)
            total = rows[0]["_total"] if rows else await connection.scalar(statements.count, values)
            count_limit = self.resource.count_limit
            if count_limit is not None and total > count_limit:
                total, estimated = await self._beyond_count_limit(connection, statements, values)
            more = values["offset"] + len(rows) < total if not estimated else len(rows) == limit
        last_key = [rows[-1][name] for name, _ in keys] if rows and more else None
        return Page([self.shape(row) for row in rows], total, last_key, estimated)

    async def _beyond_count_limit(
        self, connection: Connection, statements: OffsetStatements, values: Mapping[str, Any]
    ) -> tuple[int, bool]:
        """More rows match than the resource counts: the planner's estimate (at least one
        past the limit), or where there is none, the exact count."""
        assert self.resource.count_limit is not None
        planned = await connection.planned_rows(statements.matching, values)
        if planned is not None:
            return max(planned, self.resource.count_limit + 1), True
        exact = select(func.count()).select_from(statements.matching.subquery())
        return await connection.scalar(exact, values), False

    def _offset_page(self, filters: Hashable, keys: list[tuple[str, bool]]) -> OffsetStatements:
        where = self.where(filters)
        matching = select(self.pk).where(*where)
        if self.resource.count_limit is None:
            count = select(func.count()).select_from(self.table).where(*where)
        else:  # stops after count_limit + 1 rows
            counted = matching.limit(self.resource.count_limit + 1).subquery()
            count = select(func.count()).select_from(counted)
        # An uncorrelated scalar subquery runs once (an InitPlan), while the page itself still
        # walks the sort index: one round trip, unlike count(*) OVER () which materialises and
        # sorts every matching row.
        statement = (
            self.select()
            .where(*where)
            .order_by(*self.order_by(keys))
            .add_columns(count.scalar_subquery().label("_total"))
            .limit(bindparam("limit", type_=Integer))
            .offset(bindparam("offset", type_=Integer))
        )
        return OffsetStatements(statement, count, matching)

    async def exists_visible(self, connection: Connection, item_id: int, viewer: Viewer) -> bool:
        kind = viewer_kind(viewer)
        statement = self.shaped(
            ("exists", kind),
            lambda: select(self.pk).where(
                self.pk == bindparam("item_id", type_=Integer), self.visible(symbolic_viewer(kind))
            ),
        )
        values = {"item_id": item_id, "viewer_id": viewer.id}
        return await connection.row(statement, values) is not None

    async def require_visible(self, connection: Connection, item_id: int, viewer: Viewer) -> None:
        """404 unless the row exists and the viewer may see it."""
        if not await self.exists_visible(connection, item_id, viewer):
            raise NotFound(f"{self.resource.name} {item_id} not found")

    # -- writes -----------------------------------------------------------------------------

    async def check_parents(
        self, connection: Connection, values: Mapping[str, Any], viewer: Viewer
    ) -> None:
        """Referenced parents must exist and be visible to the writer (else 422)."""
        for parent in self.resource.parents:
            parent_id = values.get(parent.field)
            if parent_id is None:
                continue
            if not await self.parents[parent.field].exists_visible(connection, parent_id, viewer):
                raise missing_reference(parent.field, parent_id)

    async def create(
        self, connection: Connection, values: dict[str, Any], viewer: Viewer
    ) -> tuple[dict[str, Any], str]:
        reject_nul(values, "body")
        await self.check_parents(connection, values, viewer)
        now = utcnow()
        values = {**values, "created_at": now, "updated_at": now, "version": 1}
        if self.resource.owner_field:
            values[self.resource.owner_field] = viewer.id
        names = tuple(values)
        row = await self.write_returning(
            connection,
            ("insert", names),
            lambda: insert(self.table).values(self._value_binds(names)),
            {f"v_{name}": value for name, value in values.items()},
            values,
        )
        assert row is not None
        return self.shape(row), self.etag(row)

    def _value_binds(self, names: Sequence[str]) -> dict[str, Any]:
        return {name: bindparam(f"v_{name}", type_=self.table.c[name].type) for name in names}

    async def execute_write(
        self,
        connection: Connection,
        statement: Any,
        binds: Mapping[str, Any],
        values: Mapping[str, Any],
    ) -> Row | None:
        """Run an INSERT/UPDATE ... RETURNING; name a missing reference's field even on SQLite.

        PostgreSQL names the violated constraint (mapped in app/core/db_errors.py); SQLite
        only says "FOREIGN KEY constraint failed", so look up which reference is missing.
        """
        try:
            return await connection.row(statement, binds)
        except IntegrityError as error:
            if "FOREIGN KEY constraint failed" not in str(error.orig):
                raise
            for column in self.table.c:
                value = values.get(column.name)
                for key in column.foreign_keys if value is not None else ():
                    target = key.column
                    found = select(target).where(target == value)
                    if await connection.row(found) is None:
                        raise Unprocessable(
                            f"{column.name} {value} does not exist",
                            slug="missing-reference",
                            errors=[
                                field_error(column.name, "does not exist", "missing-reference")
                            ],
                        ) from None
            raise

    def reject_nulls(self, changes: Mapping[str, Any]) -> None:
        errors = [
            field_error(name, "may not be null", "null-not-allowed")
            for name, value in changes.items()
            if value is None and not self.table.c[name].nullable
        ]
        if errors:
            raise Unprocessable("Some fields may not be null", errors=errors)

    async def update(
        self,
        connection: Connection,
        item_id: int,
        changes: dict[str, Any],
        viewer: Viewer,
        if_match: list[Tag] | None = None,
    ) -> tuple[dict[str, Any], str]:
        """Apply `changes` atomically: the If-Match check is part of the UPDATE's WHERE."""
        self.reject_nulls(changes)
        reject_nul(changes, "body")
        await self.check_parents(connection, changes, viewer)
        kind, names = viewer_kind(viewer), tuple(changes)
        condition = None if if_match is None else tuple(tag.shape for tag in if_match)

        def build() -> Any:
            return (
                update(self.table)
                .where(*self._write_target(kind, condition))
                .values(
                    **self._value_binds((*names, "updated_at")),
                    version=self.table.c.version + 1,
                )
            )

        binds = {f"v_{name}": value for name, value in changes.items()}
        binds.update(self._target_values(item_id, viewer, if_match), v_updated_at=utcnow())
        row = await self.write_returning(
            connection, ("update", kind, names, condition), build, binds, changes
        )
        if row is None:
            await self._explain_refusal(connection, item_id, viewer)
        assert row is not None
        return self.shape(row), self.etag(row)

    async def delete(
        self,
        connection: Connection,
        item_id: int,
        viewer: Viewer,
        if_match: list[Tag] | None = None,
    ) -> None:
        kind = viewer_kind(viewer)
        condition = None if if_match is None else tuple(tag.shape for tag in if_match)
        statement = self.shaped(
            ("delete", kind, condition),
            lambda: (
                delete(self.table).where(*self._write_target(kind, condition)).returning(self.pk)
            ),
        )
        values = self._target_values(item_id, viewer, if_match)
        if await connection.row(statement, values) is None:
            await self._explain_refusal(connection, item_id, viewer)

    def _write_target(
        self, kind: str, condition: tuple[tuple[bool, ...], ...] | None
    ) -> Sequence[ColumnElement[bool]]:
        """The row a write may touch, for a viewer of this kind and If-Match tags with these
        NULL stamps; the values come from `_target_values`."""
        viewer = symbolic_viewer(kind)
        item_id = bindparam("item_id", type_=Integer)
        clauses = [self.pk == item_id, self.visible(viewer), self.writable(viewer)]
        if condition is not None:
            matches = (self._matches(index, nulls) for index, nulls in enumerate(condition))
            clauses.append(or_(false(), *matches))
        return clauses

    def _target_values(
        self, item_id: int, viewer: Viewer, if_match: list[Tag] | None
    ) -> dict[str, Any]:
        values = {"item_id": item_id, "viewer_id": viewer.id}
        for index, tag in enumerate(if_match or ()):
            values[f"tag_{index}"] = tag.version
            for position, stamp in enumerate(tag.stamps):
                values[f"tag_{index}_{position}"] = stamp
        return values

    def _matches(self, index: int, nulls: tuple[bool, ...]) -> ColumnElement[bool]:
        """The `index`-th If-Match tag: the version and each embed's stamp."""
        parts = [self.table.c.version == bindparam(f"tag_{index}", type_=Integer)]
        for position, (subquery, null) in enumerate(zip(self.stamp_subqueries, nulls, strict=True)):
            stamp = bindparam(f"tag_{index}_{position}", type_=subquery.type)
            parts.append(subquery.is_(None) if null else subquery == stamp)
        return and_(*parts)

    async def _explain_refusal(self, connection: Connection, item_id: int, viewer: Viewer) -> None:
        """A conditional write touched nothing: say why (404, then 403, then 412)."""
        statement = select(self.writable(viewer).label("writable")).where(
            self.pk == item_id, self.visible(viewer)
        )
        row = await connection.row(statement)
        if row is None:
            raise NotFound(f"{self.resource.name} {item_id} not found")
        if not row["writable"]:
            raise Forbidden(f"You may not change this {self.resource.name}")
        raise PreconditionFailed(
            f"{self.resource.name} {item_id} has changed since the given If-Match tag"
        )
