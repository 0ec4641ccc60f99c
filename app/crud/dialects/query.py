"""What the dialects share in translating a list query into the `/api/v1` one.

A filter key is a field (`title`, `owner.full_name`), or a field with one of the operator
suffixes json-server made common (`votes_gte`, `title_like`). One value is equality, several
are `__in`, JSON `null` (simple-rest) is `__isnull`.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi.exceptions import RequestValidationError

from app.core.errors import VALIDATION_DETAIL, Unprocessable
from app.crud.filters import Operator
from app.crud.pagination import MAX_LIMIT

SUFFIXES = {
    "_ne": "ne",
    "_gt": "gt",
    "_gte": "gte",
    "_lt": "lt",
    "_lte": "lte",
    "_like": "icontains",
}
Loc = tuple[str | int, ...]


def unprocessable(loc: Loc, message: str) -> Unprocessable:
    return Unprocessable(
        message, errors=[{"loc": ["query", *loc], "msg": message, "type": "value_error"}]
    )


@dataclass
class Translated:
    """The `/api/v1` query pairs, and for each canonical parameter where it came from."""

    pairs: list[tuple[str, str]] = field(default_factory=list)
    origins: dict[str, Loc] = field(default_factory=dict)

    def add(self, name: str, value: str, origin: Loc) -> None:
        self.pairs.append((name, value))
        self.origins[name] = origin


class FilterKeys:
    """The filter keys and sort fields a dialect accepts for one resource: its `/api/v1` ones."""

    def __init__(
        self, filters: Mapping[str, tuple[str, Operator]], sortable: Sequence[str]
    ) -> None:
        self.sortable = sortable
        self.fields = sorted({name for name, _ in filters.values()})
        self.suffixed = {  # only where `/api/v1` has the operator for the field's type
            f"{name}{suffix}": (name, op)
            for name in self.fields
            for suffix, op in SUFFIXES.items()
            if f"{name}__{op}" in filters
        }

    def sort(self, keys: Iterable[tuple[str, str]], origin: Loc) -> str:
        """`(field, ASC|DESC)` pairs as `/api/v1`'s `sort`: `title,-id`."""
        sort = []
        for name, order in keys:
            if name not in self.sortable:
                allowed = ", ".join(self.sortable)
                raise unprocessable(origin, f"cannot sort by {name!r}; allowed: {allowed}")
            direction = order.lower()
            if direction not in ("asc", "desc"):
                raise unprocessable(origin, f"sort order {order!r} is neither ASC nor DESC")
            sort.append(("-" if direction == "desc" else "") + name)
        return ",".join(sort)

    def add(self, out: Translated, key: str, values: Sequence[Any], origin: Loc) -> None:
        """Add filter `key` with `values` (strings, or JSON scalars) to the translated query."""
        name, op = (key, "eq") if key in self.fields else self.suffixed.get(key, ("", ""))
        if not name:
            suffixes = " ".join(SUFFIXES)
            message = f"unknown filter {key!r}; fields: {', '.join(self.fields)} (and {suffixes})"
            raise unprocessable(origin, message)
        if op == "eq" and any(value is None for value in values):
            if len(values) > 1:
                raise unprocessable(origin, f"{key}: null cannot be one of several values")
            out.add(f"{name}__isnull", "true", origin)
            return
        if op == "eq" and len(values) != 1:
            if not values:  # an empty list matches nothing
                out.add(f"{name}__in", "", origin)
            for value in values:
                out.add(f"{name}__in", text(value, origin), origin)
            return
        if len(values) != 1:
            raise unprocessable(origin, f"{key} takes one value")
        out.add(name if op == "eq" else f"{name}__{op}", text(values[0], origin), origin)


def text(value: Any, origin: Loc) -> str:
    """A JSON scalar as the `/api/v1` query string writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise unprocessable(origin, "filter values are strings, numbers, booleans or null")


def page_pairs(out: Translated, start: int, stop: int | None, origin: Loc) -> None:
    """Rows `start` to `stop` (exclusive); without a `stop`, MAX_LIMIT rows from `start`."""
    if start < 0 or (stop is not None and stop < start):
        raise unprocessable(origin, "the range's start must be 0 or more and not past its end")
    if stop is None:
        stop = start + MAX_LIMIT
    if stop == start:
        raise unprocessable(origin, "the range is empty: ask for at least one row")
    if stop - start > MAX_LIMIT:
        raise unprocessable(origin, f"the range spans more than {MAX_LIMIT} rows")
    out.add("offset", str(start), origin)
    out.add("limit", str(stop - start), origin)


def reword(
    error: RequestValidationError | Unprocessable, origins: Mapping[str, Loc]
) -> Unprocessable:
    """A `/api/v1` validation error, its locations named as the dialect's request named them."""
    items = error.errors() if isinstance(error, RequestValidationError) else error.errors or []
    errors = []
    for item in items:
        loc = list(item["loc"])
        if len(loc) >= 2 and loc[0] == "query" and loc[1] in origins:
            loc = ["query", *origins[str(loc[1])], *loc[2:]]
        errors.append({"loc": loc, "msg": item["msg"], "type": item["type"]})
    detail = error.detail if isinstance(error, Unprocessable) else VALIDATION_DETAIL
    return Unprocessable(detail, errors=errors)
