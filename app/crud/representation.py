"""The JSON of a resource's Public schema, written from the rows the repository shaped.

Validating rows read from our own table against the schema that mirrors it cost more than
the query (about 120 µs for a page of 20 posts). When the Public schema is a plain
projection (every field a column or an embed, no aliases, serializers or computed fields),
the shaped dicts go straight to pydantic-core's `to_json`, which formats each value as the
model's own dump does (tests/crud/test_representation.py holds it to that). Other schemas
are validated and dumped through the model.
"""

from typing import Any

from pydantic import BaseModel, Field, TypeAdapter, create_model
from pydantic_core import to_json

from app.crud.fields import without_none
from app.crud.pagination import page_model
from app.crud.relations import Relations, default_expansions, resolve
from app.crud.resource import Resource
from app.crud.sparse import FieldSet, selectable, trim


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


def expanded_model(
    resource: Resource, relations: Relations, to_many: bool = True
) -> type[BaseModel]:
    """The Public schema, plus each relation `expand` may nest as an optional property: what
    a read answers, as typed clients see it. Without `to_many`: the model of a resource's rows
    nested in another's to-many relation (only their to-one relations)."""
    fields: dict[str, Any] = {
        name: (relation.schema | None, Field(None, description=f"With `expand={name}`"))
        for name, relation in relations.optional.items()
    }
    for name, many in relations.to_many.items() if to_many else ():
        child = expanded_model(many.child, resolve(many.child), to_many=False)
        described = f"With `expand={name}`: the first {many.max_items}"
        fields[name] = (list[child] | None, Field(None, description=described))  # type: ignore[valid-type]  # a runtime type
        fields[many.total] = (int | None, Field(None, description=f"With `expand={name}`"))
    if not fields:
        return resource.public
    # Named as the Public schema it extends (which no route then uses): clients keep its name.
    nested = not to_many and relations.to_many
    name = resource.public.__name__ + ("Nested" if nested else "")
    if name not in _MODELS:
        _MODELS[name] = create_model(name, __base__=resource.public, **fields)
    return _MODELS[name]


_MODELS: dict[str, type[BaseModel]] = {}  # one class per name: FastAPI names schemas by class


class Representation:
    """Writes one item or one page of a resource as JSON bytes."""

    def __init__(self, resource: Resource, relations: Relations) -> None:
        self.item_model = expanded_model(resource, relations)
        self.list_model = page_model(self.item_model, f"{resource.name}List")
        self.plain = is_plain_projection(resource) and all(
            is_plain_projection(many.child) for many in relations.to_many.values()
        )
        self.item_adapter = TypeAdapter(self.item_model)
        self.page_adapter = TypeAdapter(self.list_model)
        self.items_adapter = TypeAdapter(list[self.item_model])  # type: ignore[name-defined]  # a runtime type
        self.selectable = selectable(self.item_model)  # what `fields` may name
        # An item beside its ETag (bulk writes' results, the change feed's records).
        self.written_model = create_model(
            f"{resource.name}Written",
            etag=(str, Field(description="The record's ETag, for a later If-Match")),
            data=(self.item_model, ...),
        )

    # exclude_unset: the relations a request did not expand are absent, not null.
    def item(self, item: dict[str, Any], fieldset: FieldSet | None = None) -> bytes:
        if not self.plain:
            model = self.item_adapter.validate_python(item)
            if fieldset is None:
                return self.item_adapter.dump_json(model, exclude_unset=True)
            item = self.item_adapter.dump_python(model, mode="json", exclude_unset=True)
        return to_json(item if fieldset is None else trim(item, fieldset))

    def page(self, body: dict[str, Any], fieldset: FieldSet | None = None) -> bytes:
        if not self.plain:
            model = self.page_adapter.validate_python(body)
            if fieldset is None:
                return self.page_adapter.dump_json(model, exclude_unset=True)
            body = self.page_adapter.dump_python(model, mode="json", exclude_unset=True)
        if fieldset is not None:
            body = {**body, "items": [trim(item, fieldset) for item in body["items"]]}
        return to_json(body)

    def items(self, items: list[dict[str, Any]]) -> bytes:
        """A bare JSON array of items (the frontend dialects' lists)."""
        if not self.plain:
            return self.items_adapter.dump_json(
                self.items_adapter.validate_python(items), exclude_unset=True
            )
        return to_json(items)

    def encode(self, model: type[BaseModel], body: dict[str, Any]) -> bytes:
        """`body`, made of shaped items, as `model`'s JSON."""
        if self.plain:
            return to_json(body)
        return model.model_validate(body).model_dump_json(exclude_unset=True).encode()
