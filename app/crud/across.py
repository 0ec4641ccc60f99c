"""Filters and sorts across to-one relations: `owner.full_name__icontains=ada`,
`sort=owner.full_name`.

Both read the related row only where the viewer may read it, so neither can probe rows the
viewer cannot see: a filter does not match them, and a sort sees NULL for them.
"""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Label, Table, select

from app.crud.access import Access, ViewerKind, symbolic_viewer
from app.crud.filters import Condition, condition_sql
from app.crud.plan import SortKey
from app.crud.relations import Relations, ToOne


def _readable(relation: ToOne, kind: ViewerKind, alias: Any) -> ColumnElement[bool] | None:
    if relation.target is None:  # users: public profiles
        return None
    return Access(relation.target).visible(symbolic_viewer(kind), alias)


def to_one_condition(
    table: Table, relation: ToOne, kind: ViewerKind, column: str, sent: Condition
) -> ColumnElement[bool]:
    """A filter on one of the relation's columns: rows whose related row matches it."""
    related = relation.sa_table.alias(f"filter_{relation.name}")
    matching = select(related.c.id).where(condition_sql(related.c[column], sent))
    readable = _readable(relation, kind, related)
    if readable is not None:
        matching = matching.where(readable)
    return table.c[relation.local_key].in_(matching)


def to_one_sort(
    table: Table, relations: Relations, kind: ViewerKind, sort: Sequence[SortKey]
) -> list[Label[Any]]:
    """The values of the sort's to-one relation fields, labelled by field: a scalar subquery
    each (the row's value for keyset cursors, and the ORDER BY's)."""
    values = []
    for key in sort:
        name, _, column = key.field.partition(".")
        if not column:
            continue
        relation = relations.to_one[name]
        related = relation.sa_table.alias(f"sort_{name}")
        value = select(related.c[column]).where(related.c.id == table.c[relation.local_key])
        readable = _readable(relation, kind, related)
        if readable is not None:
            value = value.where(readable)
        values.append(value.scalar_subquery().label(key.field))
    return values
