"""SQL for one resource: every read is one statement, every write one transaction."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    delete,
    false,
    func,
    insert,
    literal,
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


@dataclass
class Page:
    items: list[dict[str, Any]]
    total: int | None
    last_key: list[Any] | None  # sort values of the last row, when another page follows


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


def _condition(column: Any, operator: str, value: Any) -> ColumnElement[bool]:
    if operator == "in":
        return column.in_([_as_utc(item) for item in value])  # type: ignore[no-any-return]
    if operator == "isnull":
        return column.is_(None) if value else column.is_not(None)  # type: ignore[no-any-return]
    if operator in ("contains", "startswith", "icontains"):
        pattern = _escape_like(value)
        pattern = f"{pattern}%" if operator == "startswith" else f"%{pattern}%"
        if operator == "icontains":
            return column.ilike(pattern, escape="\\")  # type: ignore[no-any-return]
        return column.like(pattern, escape="\\")  # type: ignore[no-any-return]
    value = _as_utc(value)
    return {  # type: ignore[no-any-return]
        "eq": lambda: column == value,
        "ne": lambda: column != value,
        "lt": lambda: column < value,
        "lte": lambda: column <= value,
        "gt": lambda: column > value,
        "gte": lambda: column >= value,
    }[operator]()


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
        self._from, self.columns = self.joined(self.table)
        self.stamp_subqueries: list[Any] = []  # per embed: its updated_at, for the ETag
        for embed in resource.embeds:
            stamp_source = embed.table.__table__.alias()  # type: ignore[attr-defined]
            self.stamp_subqueries.append(
                select(stamp_source.c.updated_at)
                .where(stamp_source.c.id == self.table.c[embed.local_key])
                .scalar_subquery()
            )
        self._get_statements: dict[str, Select[Any]] = {}
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

    async def write_returning(
        self, connection: Connection, statement: Any, values: Mapping[str, Any]
    ) -> Row | None:
        """Run an INSERT/UPDATE and read back the representation.

        On PostgreSQL in one statement (a data-modifying CTE joined to the embeds); elsewhere
        the write returns the id and a read by id follows in the same transaction.
        """
        if connection.dialect_name == "postgresql":
            written = statement.returning(*self.table.c).cte("written")
            from_clause, columns = self.joined(written)
            return await connection.row(select(*columns).select_from(from_clause))
        written_id = await self.execute_write(connection, statement.returning(self.pk), values)
        if written_id is None:
            return None
        read = self.get_statement(Viewer(id=None, is_superuser=True))
        return await connection.row(read, {"item_id": written_id["id"], "viewer_id": None})

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
        """A flat row with labelled embed columns -> the nested representation."""
        item = {column.name: row[column.name] for column in self.table.c}
        for embed in self.resource.embeds:
            nested = {name: row[f"{embed.name}{EMBED_SEPARATOR}{name}"] for name in embed.columns}
            item[embed.name] = nested if any(v is not None for v in nested.values()) else None
        return item

    def etag(self, row: Row) -> str:
        stamps = tuple(row[STAMP_PREFIX + embed.name] for embed in self.resource.embeds)
        return format_etag(row["version"], stamps)

    def get_statement(self, viewer: Viewer) -> Select[Any]:
        """Read by id, built once per kind of viewer with `item_id`/`viewer_id` binds."""
        kind = "superuser" if viewer.is_superuser else "anonymous" if viewer.id is None else "user"
        statement = self._get_statements.get(kind)
        if statement is None:
            symbolic = Viewer(
                id=None if kind == "anonymous" else bindparam("viewer_id", type_=Integer),
                is_superuser=kind == "superuser",
            )
            statement = self.select().where(
                self.pk == bindparam("item_id", type_=Integer), self.visible(symbolic)
            )
            self._get_statements[kind] = statement
        return statement

    async def get(
        self, connection: Connection, item_id: int, viewer: Viewer
    ) -> tuple[dict[str, Any], str]:
        """The representation and its ETag; 404 when missing or invisible to the viewer."""
        params = {"item_id": item_id, "viewer_id": viewer.id}
        row = await connection.row(self.get_statement(viewer), params)
        if row is None:
            raise NotFound(f"{self.resource.name} {item_id} not found")
        return self.shape(row), self.etag(row)

    def where(self, params: Mapping[str, Any], viewer: Viewer) -> list[ColumnElement[bool]]:
        reject_nul(params, "query")
        clauses = [self.visible(viewer)]
        for param, (field, operator) in self.filters.items():
            value = params.get(param)
            if value is not None:
                clauses.append(_condition(self.table.c[field], operator, value))
        query = params.get("q")
        if query:
            pattern = f"%{_escape_like(query)}%"
            clauses.append(
                or_(
                    *(
                        self.table.c[name].ilike(pattern, escape="\\")
                        for name in self.resource.search_fields
                    )
                )
            )
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

    def after(self, keys: list[tuple[str, bool]], values: list[Any]) -> ColumnElement[bool]:
        """Rows strictly after `values` in the order of `keys` (the keyset condition)."""
        columns = [self.table.c[name] for name, _ in keys]
        directions = {descending for _, descending in keys}
        nullable = any(column.nullable for column in columns)
        if len(directions) == 1 and not nullable:
            # A row-value comparison lets the database walk the (sort, id) index.
            left = tuple_(*columns)
            right = tuple_(*(literal(v, c.type) for c, v in zip(columns, values, strict=True)))
            return left < right if directions == {True} else left > right
        branches = []
        for index, ((_, descending), column, value) in enumerate(
            zip(keys, columns, values, strict=True)
        ):
            equal = [
                c.is_(None) if v is None else c == literal(v, c.type)
                for c, v in zip(columns[:index], values[:index], strict=True)
            ]
            branches.append(and_(*equal, self._beyond(column, value, descending)))
        return or_(*branches)

    @staticmethod
    def _beyond(column: Any, value: Any, descending: bool) -> ColumnElement[bool]:
        if value is None:  # NULL is the largest value
            return column.is_not(None) if descending else false()
        bound = literal(value, column.type)  # a typed bind: booleans compare too
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
        """One page by offset (with the exact total, in the same statement) or by keyset.

        `scope` pins columns to values (a nested list's parent id); `after` holds the sort
        values of a cursor, and then the total is not counted.
        """
        keys = self.sort_keys(params["sort"])
        limit = params["limit"]
        where = self.where(params, viewer)
        where += [self.table.c[name] == value for name, value in (scope or {}).items()]
        statement = self.select().where(*where).order_by(*self.order_by(keys))
        if after is not None:
            statement = statement.where(self.after(keys, after)).limit(limit + 1)
            rows = await connection.rows(statement)
            more = len(rows) > limit
            rows = rows[:limit]
            total = None
        else:
            offset = params["offset"] or 0
            # An uncorrelated scalar subquery runs once (an InitPlan), while the page itself
            # still walks the sort index: one round trip, unlike count(*) OVER () which
            # materialises and sorts every matching row.
            count = select(func.count()).select_from(self.table).where(*where)
            statement = (
                statement.add_columns(count.scalar_subquery().label("_total"))
                .limit(limit)
                .offset(offset)
            )
            rows = await connection.rows(statement)
            total = rows[0]["_total"] if rows else await connection.scalar(count)
            more = offset + len(rows) < total
        last_key = [rows[-1][name] for name, _ in keys] if rows and more else None
        return Page([self.shape(row) for row in rows], total, last_key)

    async def exists_visible(self, connection: Connection, item_id: int, viewer: Viewer) -> bool:
        statement = select(self.pk).where(self.pk == item_id, self.visible(viewer))
        return await connection.row(statement) is not None

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
        row = await self.write_returning(connection, insert(self.table).values(values), values)
        assert row is not None
        return self.shape(row), self.etag(row)

    async def execute_write(
        self, connection: Connection, statement: Any, values: Mapping[str, Any]
    ) -> Row | None:
        """Run an INSERT/UPDATE ... RETURNING; name a missing reference's field even on SQLite.

        PostgreSQL names the violated constraint (mapped in app/core/db_errors.py); SQLite
        only says "FOREIGN KEY constraint failed", so look up which reference is missing.
        """
        try:
            return await connection.row(statement)
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
        statement = (
            update(self.table)
            .where(*self._write_target(item_id, viewer, if_match))
            .values(**changes, updated_at=utcnow(), version=self.table.c.version + 1)
        )
        row = await self.write_returning(connection, statement, changes)
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
        statement = (
            delete(self.table)
            .where(*self._write_target(item_id, viewer, if_match))
            .returning(self.pk)
        )
        if await connection.row(statement) is None:
            await self._explain_refusal(connection, item_id, viewer)

    def _write_target(
        self, item_id: int, viewer: Viewer, if_match: list[Tag] | None
    ) -> Sequence[ColumnElement[bool]]:
        clauses = [self.pk == item_id, self.visible(viewer), self.writable(viewer)]
        if if_match is not None:
            clauses.append(or_(false(), *(self._matches(tag) for tag in if_match)))
        return clauses

    def _matches(self, tag: Tag) -> ColumnElement[bool]:
        parts = [self.table.c.version == tag.version]
        for subquery, stamp in zip(self.stamp_subqueries, tag.stamps, strict=True):
            parts.append(subquery.is_(None) if stamp is None else subquery == stamp)
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
