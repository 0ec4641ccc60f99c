"""A list request as a typed plan: what shapes its SQL, apart from the values it binds.

`ListPlan` is frozen and hashable: it is the key under which `app.crud.statements` keeps the
statement built for it. `ListQuery` is one request: a plan plus its bind values and page.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.crud import binds
from app.crud.access import ViewerKind, viewer_kind
from app.crud.expand import NO_EXPANSION, Expansion
from app.crud.filters import Condition, condition_values, escape_like, filter_params, sent_condition
from app.crud.integrity import reject_nul
from app.crud.relations import Relations
from app.crud.resource import Resource, Viewer


@dataclass(frozen=True)
class SortKey:
    field: str
    descending: bool


@dataclass(frozen=True)
class ListPlan:
    viewer: ViewerKind
    conditions: tuple[Condition, ...]
    searched: bool
    sort: tuple[SortKey, ...]  # as requested, plus the primary key as the tiebreaker
    scope: tuple[str, ...]  # columns pinned to one value (a nested list's parent id)
    # A cursor page: which of the cursor's sort values are NULL. None: an offset page.
    keyset: tuple[bool, ...] | None
    expand: tuple[str, ...] = ()  # the requested to-one relations (joined into the page)


@dataclass(frozen=True)
class ListQuery:
    plan: ListPlan
    values: dict[str, Any]  # bind values, by the names in app.crud.binds
    limit: int
    offset: int  # 0 on cursor pages
    expansion: Expansion = NO_EXPANSION


def parse_sort(value: str, allowed: Sequence[str]) -> list[SortKey]:
    """`-created_at,id` -> [SortKey("created_at", True), SortKey("id", False)].

    Each field at most once: a repeat sorts nothing more, and would be one more statement
    shape to build and keep.
    """
    keys: list[SortKey] = []
    for item in value.split(","):
        name = item.strip()
        descending = name.startswith("-")
        name = name.removeprefix("-")
        if name not in allowed:
            raise ValueError(f"cannot sort by {name!r}; allowed: {', '.join(allowed)}")
        if any(key.field == name for key in keys):
            raise ValueError(f"sort names {name!r} twice")
        keys.append(SortKey(name, descending))
    return keys


def sortable(resource: Resource, relations: Relations | None = None) -> tuple[str, ...]:
    """The resource's sort fields, and its to-one relations' (`owner.full_name`)."""
    return (*(resource.sort_fields or ()), *(relations.fields if relations else ()))


def sort_keys(
    resource: Resource, sort: str, relations: Relations | None = None
) -> tuple[SortKey, ...]:
    """The requested keys plus the primary key as tiebreaker (in the first key's direction)."""
    keys = parse_sort(sort, sortable(resource, relations))
    if all(key.field != "id" for key in keys):
        keys.append(SortKey("id", keys[0].descending))
    return tuple(keys)


class ListPlanner:
    """Turns a resource's validated list parameters into a `ListQuery`."""

    def __init__(
        self,
        resource: Resource,
        relations: Relations | None = None,
        extra_filters: tuple[str, ...] = (),
    ) -> None:
        self.resource = resource
        self.relations = relations
        self.filters = filter_params(resource, relations, extra_filters)

    def plan(
        self,
        params: Mapping[str, Any],
        viewer: Viewer,
        scope: Mapping[str, Any],
        after: Sequence[Any] | None = None,
        expansion: Expansion = NO_EXPANSION,
    ) -> ListQuery:
        reject_nul(params, "query")
        conditions = []
        values: dict[str, Any] = {binds.VIEWER_ID: viewer.id}
        for param, value in params.items():
            if value is None or param not in self.filters:
                continue
            field, op = self.filters[param]
            condition = sent_condition(param, field, op, value)
            conditions.append(condition)
            values.update(condition_values(condition, value))
        search = params.get("q")
        if search:
            values[binds.SEARCH] = f"%{escape_like(search)}%"
        values.update({binds.scope(name): value for name, value in scope.items()})
        keyset = None
        if after is not None:
            keyset = tuple(value is None for value in after)
            values.update({binds.after(i): value for i, value in enumerate(after)})
        limit = params["limit"]
        offset = 0 if after is not None else params["offset"] or 0
        if after is None:
            values.update({binds.LIMIT: limit, binds.OFFSET: offset})
        else:  # one more row than the page tells whether another page follows
            values[binds.LIMIT] = limit + 1
        plan = ListPlan(
            viewer=viewer_kind(viewer),
            conditions=tuple(conditions),
            searched=bool(search),
            sort=sort_keys(self.resource, params["sort"], self.relations),
            scope=tuple(scope),
            keyset=keyset,
            expand=expansion.to_one,
        )
        return ListQuery(plan, values, limit, offset, expansion)
