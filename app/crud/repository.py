"""SQL for one resource: every read is one statement, every write one transaction."""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    delete,
    false,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.db import utcnow
from app.core.errors import Forbidden, NotFound, PreconditionFailed, Unprocessable, field_error
from app.crud.params import filter_params, parse_sort
from app.crud.resource import Read, Resource, Viewer, Write

EMBED_SEPARATOR = "__"


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _as_utc(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


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


class Repository:
    """Builds and runs the statements of one declared resource."""

    def __init__(self, resource: Resource) -> None:
        self.resource = resource
        self.table = resource.sa_table
        self.pk = self.table.c.id
        self.owner = self.table.c[resource.owner_field] if resource.owner_field else None
        self.filters = filter_params(resource)
        self._from: Any = self.table
        columns: list[Any] = list(self.table.c)
        for embed in resource.embeds:
            target = embed.table.__table__  # type: ignore[attr-defined]
            alias = target.alias(embed.name)
            self._from = self._from.outerjoin(alias, self.table.c[embed.local_key] == alias.c.id)
            columns += [
                alias.c[name].label(f"{embed.name}{EMBED_SEPARATOR}{name}")
                for name in embed.columns
            ]
        self.columns = columns

    # -- row access rules -------------------------------------------------------------------

    def visible(self, viewer: Viewer) -> ColumnElement[bool]:
        """Rows this viewer may see at all; the rest behave as if they did not exist."""
        clauses: list[ColumnElement[bool]] = []
        if viewer.is_superuser:
            return true()
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

    def shape(self, row: RowMapping) -> dict[str, Any]:
        """A flat row with labelled embed columns -> the nested representation."""
        item = {column.name: row[column.name] for column in self.table.c}
        for embed in self.resource.embeds:
            nested = {name: row[f"{embed.name}{EMBED_SEPARATOR}{name}"] for name in embed.columns}
            item[embed.name] = nested if any(v is not None for v in nested.values()) else None
        return item

    async def get(
        self, connection: AsyncConnection, item_id: int, viewer: Viewer
    ) -> dict[str, Any]:
        statement = self.select().where(self.pk == item_id, self.visible(viewer))
        row = (await connection.execute(statement)).mappings().first()
        if row is None:
            raise NotFound(f"{self.resource.name} {item_id} not found")
        return self.shape(row)

    def where(self, params: Mapping[str, Any], viewer: Viewer) -> list[ColumnElement[bool]]:
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

    def order_by(self, sort: str) -> list[Any]:
        keys = parse_sort(sort, self.resource.sort_fields or ())
        order = []
        for name, descending in keys:
            column = self.table.c[name]
            order.append(column.desc().nulls_last() if descending else column.asc().nulls_first())
        if "id" not in (name for name, _ in keys):
            order.append(self.pk.asc())
        return order

    async def page(
        self,
        connection: AsyncConnection,
        params: Mapping[str, Any],
        viewer: Viewer,
        scope: Mapping[str, Any] | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """One page by offset and the total, in one round trip (a window count).

        `scope` pins columns to values (a nested list's parent id).
        """
        where = self.where(params, viewer)
        where += [self.table.c[name] == value for name, value in (scope or {}).items()]
        statement = (
            self.select()
            .add_columns(func.count().over().label("_total"))
            .where(*where)
            .order_by(*self.order_by(params["sort"]))
            .limit(params["limit"])
            .offset(params["offset"])
        )
        rows = (await connection.execute(statement)).mappings().all()
        if rows:
            return [self.shape(row) for row in rows], rows[0]["_total"]
        count = select(func.count()).select_from(self._from).where(*where)
        return [], (await connection.execute(count)).scalar_one()

    async def exists_visible(
        self, connection: AsyncConnection, item_id: int, viewer: Viewer
    ) -> bool:
        statement = select(self.pk).where(self.pk == item_id, self.visible(viewer))
        return (await connection.execute(statement)).first() is not None

    # -- writes -----------------------------------------------------------------------------

    async def create(
        self, connection: AsyncConnection, values: dict[str, Any], viewer: Viewer
    ) -> dict[str, Any]:
        for parent in self.resource.parents:
            parent_id = values.get(parent.field)
            if parent_id is not None and not await Repository(parent.resource).exists_visible(
                connection, parent_id, viewer
            ):
                raise Unprocessable(
                    f"{parent.resource.name} {parent_id} does not exist",
                    slug="missing-reference",
                    errors=[field_error(parent.field, "does not exist", "missing-reference")],
                )
        now = utcnow()
        values = {**values, "created_at": now, "updated_at": now, "version": 1}
        if self.resource.owner_field:
            values[self.resource.owner_field] = viewer.id
        result = await connection.execute(insert(self.table).values(values).returning(self.pk))
        return await self.get(connection, result.scalar_one(), viewer)

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
        connection: AsyncConnection,
        item_id: int,
        changes: dict[str, Any],
        viewer: Viewer,
        expected_version: int | None = None,
    ) -> dict[str, Any]:
        self.reject_nulls(changes)
        statement = (
            update(self.table)
            .where(*self._write_target(item_id, viewer, expected_version))
            .values(**changes, updated_at=utcnow(), version=self.table.c.version + 1)
            .returning(self.pk)
        )
        if (await connection.execute(statement)).first() is None:
            await self._explain_refusal(connection, item_id, viewer)
        return await self.get(connection, item_id, viewer)

    async def delete(
        self,
        connection: AsyncConnection,
        item_id: int,
        viewer: Viewer,
        expected_version: int | None = None,
    ) -> None:
        statement = (
            delete(self.table)
            .where(*self._write_target(item_id, viewer, expected_version))
            .returning(self.pk)
        )
        if (await connection.execute(statement)).first() is None:
            await self._explain_refusal(connection, item_id, viewer)

    def _write_target(
        self, item_id: int, viewer: Viewer, expected_version: int | None
    ) -> Sequence[ColumnElement[bool]]:
        clauses = [self.pk == item_id, self.visible(viewer), self.writable(viewer)]
        if expected_version is not None:
            clauses.append(self.table.c.version == expected_version)
        return clauses

    async def _explain_refusal(
        self, connection: AsyncConnection, item_id: int, viewer: Viewer
    ) -> None:
        """A conditional write touched nothing: say why (404, then 403, then 412)."""
        statement = select(self.writable(viewer).label("writable")).where(
            self.pk == item_id, self.visible(viewer)
        )
        row = (await connection.execute(statement)).first()
        if row is None:
            raise NotFound(f"{self.resource.name} {item_id} not found")
        if not row.writable:
            raise Forbidden(f"You may not change this {self.resource.name}")
        raise PreconditionFailed(f"{self.resource.name} {item_id} has changed (If-Match)")
