"""Write bodies as react-admin sends them: the whole record back, read-only fields included.

A dialect's body schema is the resource's Create or Update schema plus every other property
its answers show (`id`, the owner, nested rows, counters, timestamps), accepted as anything
and never applied. A property the resource does not have stays a 422.
"""

from functools import cache
from typing import Any

from pydantic import BaseModel, Field, create_model

READ_ONLY = "Read-only: accepted (as the record showed it) and ignored"


@cache  # one class per name: both dialects share it (FastAPI names schemas by class)
def lenient_model(schema: type[BaseModel], shown: tuple[str, ...], name: str) -> type[BaseModel]:
    """`schema`, also accepting (and ignoring) the properties in `shown` it does not write."""
    ignored: dict[str, Any] = {
        key: (Any, Field(None, description=READ_ONLY))
        for key in shown
        if key not in schema.model_fields
    }
    return create_model(name, __base__=schema, **ignored)


def written(body: BaseModel, schema: type[BaseModel], partial: bool) -> dict[str, Any]:
    """What a lenient body writes: the fields of `schema` (with `partial`, those sent)."""
    return body.model_dump(include=set(schema.model_fields), exclude_unset=partial)
