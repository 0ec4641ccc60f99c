"""The json-server dialect, as `ra-data-json-server` and refine's `@refinedev/simple-rest` send it.

`?_start=0&_end=25&_sort=title,id&_order=ASC,desc&q=x&published=true&votes_gte=2&id=1&id=2`:
rows `_start` to `_end` (exclusive), sort fields with their orders, search, and filters as
their own parameters (repeated for several values); the total in `X-Total-Count`.
"""

from typing import Any

from starlette.datastructures import QueryParams

from app.crud.dialects.query import (
    FilterKeys,
    Translated,
    page_pairs,
    unprocessable,
)

NAME = "json-server"
DESCRIPTION = (
    "The json-server dialect of every resource, for react-admin's `ra-data-json-server` and "
    "refine's `@refinedev/simple-rest`: lists are a bare JSON array with `X-Total-Count`."
)
EMBED = ("_embed", "_expand")


def translate(query: QueryParams, keys: FilterKeys) -> Translated:
    out = Translated()
    sent: dict[str, list[str]] = {}
    for key, value in query.multi_items():
        sent.setdefault(key, []).append(value)
    start, stop = (_integer(sent, name) for name in ("_start", "_end"))
    page_pairs(out, start or 0, stop, ("_start",) if stop is None else ("_end",))
    fields = [name for value in sent.get("_sort", []) for name in value.split(",") if name]
    orders = [order for value in sent.get("_order", []) for order in value.split(",") if order]
    if orders and len(orders) != len(fields):
        raise unprocessable(("_order",), "_order needs one order per _sort field")
    if fields:
        pairs = zip(fields, orders or ["asc"] * len(fields), strict=True)
        out.add("sort", keys.sort(pairs, ("_sort",)), ("_sort",))
    for key, values in sent.items():
        if key in ("_start", "_end", "_sort", "_order"):
            continue
        if key == "q":
            out.add("q", values[-1], ("q",))
        elif key in EMBED:
            for value in values:
                out.add("expand", value, (key,))
        elif key.startswith("_"):
            raise unprocessable((key,), f"unknown parameter {key!r}")
        else:
            keys.add(out, key, values, (key,))
    return out


def _integer(sent: dict[str, list[str]], name: str) -> int | None:
    if name not in sent:
        return None
    value = sent[name][-1]
    if not value.isdigit() or len(value) > 9:
        raise unprocessable((name,), f"{name} must be a whole number from 0 to 999999999")
    return int(value)


def embedded(query: QueryParams) -> list[str]:
    return [value for key in EMBED for value in query.getlist(key)]


HEADER_DOCS = {
    "X-Total-Count": {"description": "Rows matching the filters", "schema": {"type": "integer"}}
}


def headers(plural: str, offset: int, count: int, total: int) -> dict[str, str]:
    return {"X-Total-Count": str(total)}


def parameters(keys: FilterKeys, search: bool, expandable: list[str]) -> list[dict[str, Any]]:
    def query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {
            "name": name,
            "in": "query",
            "required": False,
            "schema": schema,
            "description": description,
        }

    described = [
        query("_start", {"type": "integer", "minimum": 0}, "First row (from 0)"),
        query("_end", {"type": "integer", "minimum": 1}, "Row after the last (at most 100 rows)"),
        query("_sort", {"type": "string"}, "Comma-separated fields: " + ", ".join(keys.sortable)),
        query("_order", {"type": "string"}, "Comma-separated ASC or DESC, one per _sort field"),
    ]
    if search:
        described.append(query("q", {"type": "string", "maxLength": 200}, "Search"))
    if expandable:
        items = {"type": "string", "enum": expandable}
        described.append(query("_embed", {"type": "array", "items": items}, "Related rows to nest"))
    for key in keys.fields:
        schema = {"type": "array", "items": {"type": "string"}}
        described.append(query(key, schema, f"{key} equals (repeated: one of)"))
    for key, (name, op) in keys.suffixed.items():
        described.append(query(key, {"type": "string"}, f"{name} {op}"))
    return described
