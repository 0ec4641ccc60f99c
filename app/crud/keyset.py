"""Keyset order: ORDER BY for a sort, and "rows after this cursor" as a WHERE clause.

NULL sorts as the largest value on both databases (PostgreSQL's default), so a cursor that
stopped on a NULL continues past the NULLs in the sort's direction.
"""

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    and_,
    bindparam,
    false,
    or_,
    tuple_,
)

from app.crud import binds
from app.crud.plan import SortKey


class SortColumns(Protocol):
    """The sort's columns by field: a table's or a subquery's `.c`, or a dict that also holds
    the values of to-one relations' fields (`owner.full_name`: a scalar subquery, maybe NULL)."""

    def __getitem__(self, field: str, /) -> ColumnElement[Any]: ...


def nullable(column: ColumnElement[Any]) -> bool:
    return bool(getattr(column, "nullable", True))


def order_by(columns: SortColumns, sort: Sequence[SortKey]) -> list[ColumnElement[Any]]:
    order: list[ColumnElement[Any]] = []
    for key in sort:
        column = columns[key.field]
        if not nullable(column):
            order.append(column.desc() if key.descending else column.asc())
        elif key.descending:
            order.append(column.desc().nulls_first())
        else:
            order.append(column.asc().nulls_last())
    return order


def after(
    sort_columns: SortColumns, sort: Sequence[SortKey], nulls: Sequence[bool]
) -> ColumnElement[bool]:
    """Rows strictly after the cursor's values (`binds.after(i)`) in this order; `nulls` says
    which of those values are NULL."""
    columns = [sort_columns[key.field] for key in sort]
    bounds = [bindparam(binds.after(i), type_=column.type) for i, column in enumerate(columns)]
    directions = {key.descending for key in sort}
    if len(directions) == 1 and not any(nullable(column) for column in columns):
        # A row-value comparison lets the database walk the (sort, id) index.
        left, right = tuple_(*columns), tuple_(*bounds)
        return left < right if directions == {True} else left > right
    branches = []
    for index, (key, column, bound, null) in enumerate(
        zip(sort, columns, bounds, nulls, strict=True)
    ):
        equal = [
            c.is_(None) if n else c == b
            for c, b, n in zip(columns[:index], bounds[:index], nulls[:index], strict=True)
        ]
        branches.append(and_(*equal, _beyond(column, bound, null, key.descending)))
    return or_(*branches)


def _beyond(
    column: ColumnElement[Any], bound: BindParameter[Any], null: bool, descending: bool
) -> ColumnElement[bool]:
    if null:  # NULL is the largest value
        return column.is_not(None) if descending else false()
    if descending:
        return column < bound
    beyond = column > bound
    return or_(beyond, column.is_(None)) if nullable(column) else beyond
