"""The JSON of a resource's Public schema, written from the rows the repository shaped.

Validating rows read from our own table against the schema that mirrors it cost more than
the query (about 120 µs for a page of 20 posts). When the Public schema is a plain
projection (every field a column or an embed, no aliases, serializers or computed fields),
the shaped dicts go straight to pydantic-core's `to_json`, which formats each value as the
model's own dump does (tests/crud/test_representation.py holds it to that). Other schemas
are validated and dumped through the model.
"""

from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic_core import to_json

from app.crud.fields import without_none
from app.crud.pagination import page_model
from app.crud.relations import default_expansions
from app.crud.resource import Resource


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    annotation = without_none(annotation)
    return (
        annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    )


def _plain(model: type[BaseModel], names: tuple[str, ...]) -> bool:
    """The model's JSON is its fields `names`, in order, each dumped as it is."""
    decorators = model.__pydantic_decorators__
    if decorators.field_serializers or decorators.model_serializers or decorators.computed_fields:
        return False
    fields = model.model_fields
    return tuple(fields) == names and all(
        field.alias is None and field.serialization_alias is None for field in fields.values()
    )


def is_plain_projection(resource: Resource) -> bool:
    """Whether `Repository.shape` already gives the Public schema's JSON, field for field."""
    embeds = {embed.name: embed for embed in default_expansions(resource)}
    public = resource.public
    if not _plain(
        public,
        tuple(name for name in public.model_fields if name in embeds or name in resource.columns),
    ):
        return False
    for name, embed in embeds.items():
        field = public.model_fields.get(name)
        nested = _nested_model(field.annotation) if field else None
        if nested is None or not _plain(nested, embed.columns):
            return False
    return True


class Representation:
    """Writes one item or one page of a resource as JSON bytes."""

    def __init__(self, resource: Resource) -> None:
        self.list_model = page_model(resource.public)
        self.plain = is_plain_projection(resource)
        self.item_adapter = TypeAdapter(resource.public)
        self.page_adapter = TypeAdapter(self.list_model)

    def item(self, item: dict[str, Any]) -> bytes:
        if self.plain:
            return to_json(item)
        return self.item_adapter.dump_json(self.item_adapter.validate_python(item))

    def page(self, body: dict[str, Any]) -> bytes:
        if self.plain:
            return to_json(body)
        return self.page_adapter.dump_json(self.page_adapter.validate_python(body))
