"""`?fields=`: sparse fieldsets on get and list, inside expansions too.

`fields=id,title,owner` keeps those properties; `owner.full_name` (or `comments.body`) keeps
that property of a nested row, and the relation with it. `id` is always kept, at every level.
The rows are read whole and trimmed here: a fieldset changes no statement.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from app.core.errors import Unprocessable
from app.crud.expand import sent_names
from app.crud.fields import without_none

MAX_FIELDS = 50  # entries, counted as sent
ALWAYS = "id"


@dataclass(frozen=True)
class FieldSet:
    keep: frozenset[str]
    nested: Mapping[str, frozenset[str]]  # relation -> the nested fields to keep


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The model a property nests: `X | None` or `list[X] | None`."""
    annotation = without_none(annotation)
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def selectable(model: type[BaseModel]) -> dict[str, tuple[str, ...]]:
    """Property -> the properties of the rows it nests (empty for a plain property)."""
    names: dict[str, tuple[str, ...]] = {}
    for name, field in model.model_fields.items():
        nested = _nested_model(field.annotation)
        names[name] = tuple(nested.model_fields) if nested is not None else ()
    return names


def _refuse(message: str) -> Unprocessable:
    error = {"loc": ["query", "fields"], "msg": message, "type": "value_error"}
    return Unprocessable(message, errors=[error])


def parse_fields(values: Sequence[str], allowed: Mapping[str, Sequence[str]]) -> FieldSet | None:
    """The fieldset `fields` asks for (None: every field); 422 naming the allowed ones."""
    names = sent_names(values)
    if not names:
        return None
    if len(names) > MAX_FIELDS:
        raise _refuse(f"fields takes at most {MAX_FIELDS} entries")
    keep: set[str] = {ALWAYS}
    nested: dict[str, set[str]] = {}
    for name in names:
        outer, _, inner = name.partition(".")
        if outer not in allowed or (inner and inner not in allowed[outer]):
            raise _refuse(f"unknown field {name!r}; allowed: {', '.join(choices(allowed))}")
        keep.add(outer)
        if inner:
            nested.setdefault(outer, {ALWAYS}).add(inner)
    return FieldSet(frozenset(keep), {name: frozenset(inner) for name, inner in nested.items()})


def trim(item: dict[str, Any], fieldset: FieldSet) -> dict[str, Any]:
    """The item with only the fieldset's properties (and in them, their nested ones)."""
    kept = {name: value for name, value in item.items() if name in fieldset.keep}
    for name, inner in fieldset.nested.items():
        value = kept.get(name)
        if isinstance(value, dict):
            kept[name] = {key: v for key, v in value.items() if key in inner}
        elif isinstance(value, list):
            kept[name] = [{key: v for key, v in row.items() if key in inner} for row in value]
    return kept


def choices(allowed: Mapping[str, Sequence[str]]) -> list[str]:
    """Every name `fields` takes: the properties, then the nested ones (`owner.full_name`)."""
    nested = [f"{outer}.{inner}" for outer, names in allowed.items() for inner in names]
    return [*allowed, *nested]


def fields_parameter(allowed: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """The OpenAPI parameter: an array of the names, comma-separated."""
    return {
        "name": "fields",
        "in": "query",
        "required": False,
        "style": "form",
        "explode": False,
        "schema": {"type": "array", "items": {"type": "string", "enum": choices(allowed)}},
        "description": "Only these properties (`id` always): `title`, or `owner.full_name` "
        "inside a nested row. The answer then holds just those, whatever the response schema "
        "marks required.",
    }
