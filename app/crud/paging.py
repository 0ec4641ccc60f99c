"""Reads one page of a resource's list: by offset with its total (the planner's estimate past
`count_limit`), or by keyset, with the to-one relations joined and the to-many nested."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from app.core.connections import Connection, Row
from app.crud.children import Children
from app.crud.plan import ListQuery
from app.crud.projection import Projection
from app.crud.resource import Resource, Viewer
from app.crud.statements import OffsetStatements, ResourceStatements

Item = dict[str, Any]


@dataclass
class PageRows:
    """One page as the repository found it; the route layer turns it into the list format."""

    items: list[Item]
    total: int | None  # None on cursor pages
    last_key: list[Any] | None  # sort values of the last row, when another page follows
    estimated: bool = False  # `total` is the planner's estimate (see Resource.count_limit)


class PageReader:
    def __init__(
        self,
        resource: Resource,
        statements: ResourceStatements,
        projection: Projection,
        children: Children,
    ) -> None:
        self.resource = resource
        self.statements = statements
        self.projection = projection
        self.children = children

    async def read(self, connection: Connection, query: ListQuery, viewer: Viewer) -> PageRows:
        """One page by offset (with the total, in the same statement) or by keyset."""
        plan, values, expansion = query.plan, query.values, query.expansion
        if plan.keyset is not None:
            rows = await connection.rows(self.statements.keyset_page(plan), values)
            more = len(rows) > query.limit
            rows = rows[: query.limit]
            total, estimated = None, False
        else:
            total, estimated, rows = await self._offset_page(connection, query)
            more = len(rows) == query.limit if estimated else query.offset + len(rows) < total
        items = [self.projection.shape(row, expansion.to_one) for row in rows]
        await self.children.nest(connection, items, viewer, expansion)
        last_key = [rows[-1][key.field] for key in plan.sort] if rows and more else None
        return PageRows(items, total, last_key, estimated)

    async def _offset_page(
        self, connection: Connection, query: ListQuery
    ) -> tuple[int, bool, Sequence[Row]]:
        statements = self.statements.offset_page(query.plan)
        rows = await connection.rows(statements.page, query.values)
        total = (
            rows[0]["_total"] if rows else await connection.scalar(statements.count, query.values)
        )
        count_limit = self.resource.count_limit
        if count_limit is not None and total > count_limit:
            total, estimated = await self._beyond_count_limit(connection, statements, query.values)
            return total, estimated, rows
        return total, False, rows

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
