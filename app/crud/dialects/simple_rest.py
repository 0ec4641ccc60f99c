"""The `ra-data-simple-rest` dialect of react-admin.

`?sort=["title","ASC"]&range=[0,24]&filter={"q":"x","id":[1,2],"owner":{"full_name":"Ada"}}`:
JSON-encoded parameters, the range inclusive, nested filter objects naming related fields;
the total in `Content-Range: posts 0-24/319`.
"""

import json
from typing import Any

from starlette.datastructures import QueryParams

from app.crud.dialects.query import (
    FilterKeys,
    Translated,
    page_pairs,
    unprocessable,
)

NAME = "simple-rest"
DESCRIPTION = (
    "The `ra-data-simple-rest` dialect of every resource, for react-admin: lists are a bare "
    "JSON array with `Content-Range`."
)
KNOWN = ("sort", "range", "filter", "embed")


def translate(query: QueryParams, keys: FilterKeys) -> Translated:
    out = Translated()
    unknown = sorted(set(query) - set(KNOWN))
    if unknown:
        raise unprocessable(
            (unknown[0],), f"unknown parameter {unknown[0]!r}; allowed: " + ", ".join(KNOWN)
        )
    bounds = _json(query, "range")
    if bounds is None:
        page_pairs(out, 0, None, ("range",))
    elif _pair(bounds, int):
        page_pairs(out, bounds[0], bounds[1] + 1, ("range",))
    else:
        raise unprocessable(("range",), "range is a JSON array of two whole numbers: [0,24]")
    sort = _json(query, "sort")
    if sort is not None:
        if not _pair(sort, str):
            raise unprocessable(
                ("sort",), 'sort is a JSON array of a field and an order: ["id","ASC"]'
            )
        out.add("sort", keys.sort([(sort[0], sort[1])], ("sort",)), ("sort",))
    conditions = _json(query, "filter")
    if conditions is not None:
        if not isinstance(conditions, dict):
            raise unprocessable(("filter",), "filter is a JSON object")
        for key, value in _flatten(conditions):
            if key == "q":
                if not isinstance(value, str):
                    raise unprocessable(("filter", "q"), "q is a string")
                out.add("q", value, ("filter", "q"))
            else:
                values = value if isinstance(value, list) else [value]
                keys.add(out, key, values, ("filter", key))
    for name in embedded(query):
        out.add("expand", name, ("embed",))
    return out


def embedded(query: QueryParams) -> list[str]:
    """`embed=["comments"]` (react-admin's `meta.embed`)."""
    embed = _json(query, "embed")
    names = [] if embed is None else embed if isinstance(embed, list) else [embed]
    if not all(isinstance(name, str) for name in names):
        raise unprocessable(("embed",), 'embed is a JSON array of names: ["comments"]')
    return names


def _json(query: QueryParams, name: str) -> Any:
    if name not in query:
        return None
    try:
        return json.loads(query[name])
    except ValueError:
        raise unprocessable((name,), f"{name} is not valid JSON") from None


def _pair(value: Any, kind: type) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(item, kind) and not isinstance(item, bool) for item in value)
    )


def _flatten(conditions: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """`{"owner": {"full_name": "Ada"}}` -> `owner.full_name` (react-admin's flattenObject)."""
    flat = []
    for key, value in conditions.items():
        if isinstance(value, dict):
            flat += _flatten(value, f"{prefix}{key}.")
        else:
            flat.append((f"{prefix}{key}", value))
    return flat


HEADER_DOCS = {
    "Content-Range": {
        "description": "The rows shown and the rows matching: `posts 0-24/319` (`posts */0`)",
        "schema": {"type": "string"},
    }
}


def headers(plural: str, offset: int, count: int, total: int) -> dict[str, str]:
    rows = f"{offset}-{offset + count - 1}" if count else "*"
    return {"Content-Range": f"{plural} {rows}/{total}"}


def parameters(keys: FilterKeys, search: bool, expandable: list[str]) -> list[dict[str, Any]]:
    def json_query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {
            "name": name,
            "in": "query",
            "required": False,
            "content": {"application/json": {"schema": schema}},
            "description": description,
        }

    scalar: dict[str, Any] = {"type": ["string", "number", "boolean", "null"]}
    filters: dict[str, Any] = {
        key: {"anyOf": [scalar, {"type": "array", "items": scalar}]} for key in keys.fields
    }
    filters |= {key: scalar for key in keys.suffixed}
    if search:
        filters["q"] = {"type": "string", "maxLength": 200}
    described = [
        json_query(
            "sort",
            {
                "type": "array",
                "prefixItems": [
                    {"type": "string", "enum": list(keys.sortable)},
                    {"type": "string", "enum": ["ASC", "DESC"]},
                ],
                "minItems": 2,
                "maxItems": 2,
            },
            "[field, ASC|DESC]",
        ),
        json_query(
            "range",
            {
                "type": "array",
                "items": {"type": "integer", "minimum": 0},
                "minItems": 2,
                "maxItems": 2,
            },
            "[first, last] rows, inclusive (at most 100 rows)",
        ),
        json_query(
            "filter",
            {"type": "object", "properties": filters, "additionalProperties": False},
            "Field values (an array: one of), `q` to search, suffixes _ne _gt _gte _lt _lte _like",
        ),
    ]
    if expandable:
        items = {"type": "string", "enum": expandable}
        described.append(
            json_query("embed", {"type": "array", "items": items}, "Related rows to nest")
        )
    return described
