"""`?expand=`: which relations one request nests, parsed and checked against the declaration.

`expand=owner,comments` or repeated (`expand=owner&expand=comments`); one level, plus the
to-one relations of a to-many one's rows (`comments.author`). Default expansions are always
nested, so naming one changes nothing.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.core.errors import Unprocessable
from app.crud.relations import Relations

MAX_EXPAND = 10  # entries, counted as sent


@dataclass(frozen=True)
class Expansion:
    to_one: tuple[str, ...] = ()  # requested to-one relations beyond the defaults
    to_many: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (relation, its rows' to-one ones)

    @property
    def names(self) -> tuple[str, ...]:
        return (*self.to_one, *(name for name, _ in self.to_many))


NO_EXPANSION = Expansion()


def _refuse(message: str) -> Unprocessable:
    error = {"loc": ["query", "expand"], "msg": message, "type": "value_error"}
    return Unprocessable(message, errors=[error])


def sent_names(values: Sequence[str]) -> list[str]:
    """`["owner,comments", "x"]` -> `["owner", "comments", "x"]`."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def parse_expand(values: Sequence[str], relations: Relations) -> Expansion:
    """The expansion the `expand` values ask for; 422 naming the allowed ones otherwise."""
    names = sent_names(values)
    if not names:
        return NO_EXPANSION
    allowed = relations.names
    if len(names) > MAX_EXPAND:
        raise _refuse(f"expand takes at most {MAX_EXPAND} entries")
    to_one: set[str] = set()
    to_many: dict[str, set[str]] = {}
    for name in names:
        outer, _, inner = name.partition(".")
        if name not in allowed:
            deeper = "." in inner or (inner and outer in relations.to_one)
            reason = "nests too deep (one level, plus to-one relations of a to-many one)"
            problem = reason if deeper else "is not an expandable relation"
            raise _refuse(f"{name!r} {problem}; allowed: {', '.join(allowed) or 'none'}")
        if outer in relations.to_many:
            nested = to_many.setdefault(outer, set())
            if inner:
                nested.add(inner)
        elif outer not in relations.defaults:
            to_one.add(outer)
    return Expansion(
        tuple(name for name in relations.to_one if name in to_one),
        tuple(
            (name, tuple(inner for inner in relations.nested[name] if inner in to_many[name]))
            for name in relations.to_many
            if name in to_many
        ),
    )


def expand_parameter(relations: Relations) -> dict[str, Any]:
    """The OpenAPI parameter: an array of the allowed names, comma-separated."""
    return {
        "name": "expand",
        "in": "query",
        "required": False,
        "style": "form",
        "explode": False,
        "schema": {"type": "array", "items": {"type": "string", "enum": list(relations.names)}},
        "description": "Related rows to nest, comma-separated: a to-one relation as an object "
        "(or null), a to-many one as an array of its first rows beside `<name>_total`.",
    }
