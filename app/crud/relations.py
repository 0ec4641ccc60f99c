"""The relations a resource's reads may nest, resolved from its table model's `Relationship()`s.

The declaration names them (`Resource.expand`); SQLAlchemy's mapper says where each one
points and through which foreign key, so no column list is kept by hand. A to-one relation
(a post's owner) is a LEFT JOIN of the related row's columns; a to-many one (a post's comments)
is one more statement per page, for every parent on it (app/crud/children.py).
"""

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pydantic import create_model
from sqlalchemy import Column, Table
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import MANYTOONE, ONETOMANY, RelationshipProperty
from sqlmodel import SQLModel

from app.crud.resource import Expand, Resource, registry


@dataclass(frozen=True)
class ToOne:
    """A to-one relation as SQL: the related table, joined on `local_key` = its id."""

    name: str
    sa_table: Table
    local_key: str  # this table's column holding the related row's id
    columns: tuple[str, ...]  # the related columns its schema shows, in the schema's order
    schema: type[SQLModel]
    target: Resource | None  # its resource (visibility applies), or None (users: profiles)


@dataclass(frozen=True)
class ToMany:
    """A to-many relation: the child resource's rows whose `foreign_key` names the parent."""

    name: str
    child: Resource
    foreign_key: str
    max_items: int

    @property
    def total(self) -> str:
        return f"{self.name}_total"


def resource_of(table: Table) -> Resource | None:
    return next((resource for resource in registry if resource.sa_table is table), None)


def column_schema(resource: Resource) -> type[SQLModel]:
    """The resource's Public schema as its own columns: what a to-one expansion shows of it
    (one level: the related row's own expansions are not nested)."""
    public = resource.public
    fields = {
        name: field for name, field in public.model_fields.items() if name in resource.columns
    }
    if len(fields) == len(public.model_fields):
        return public
    name = f"{resource.name}Summary"
    if name in _SUMMARIES:  # one class per name: the OpenAPI document names schemas by class
        return _SUMMARIES[name]
    definitions: dict[str, Any] = {
        name: (field.annotation, field) for name, field in fields.items()
    }
    model: type[SQLModel] = create_model(name, __base__=SQLModel, **definitions)
    _SUMMARIES[name] = model
    return model


_SUMMARIES: dict[str, type[SQLModel]] = {}


def _relationship(resource: Resource, name: str) -> RelationshipProperty[Any]:
    found: RelationshipProperty[Any] | None = sa_inspect(resource.table).relationships.get(name)
    if found is None:
        raise TypeError(
            f"{resource.plural}: expand {name!r} is not a Relationship() of "
            f"{resource.table.__name__}"
        )
    return found


def to_one(resource: Resource, expand: Expand) -> ToOne:
    """Resolve one declared to-one expansion; TypeError names what does not fit."""
    where = f"{resource.plural}: expand {expand.name!r}"
    relationship = _relationship(resource, expand.name)
    if relationship.direction is not MANYTOONE:
        raise TypeError(f"{where} is not a to-one relation")
    [(local, remote)] = relationship.local_remote_pairs
    target = remote.table
    if not isinstance(target, Table) or remote.key != "id":
        raise TypeError(f"{where} must reference the id of a table")
    related = resource_of(target)
    schema = expand.schema
    if schema is None:
        if related is None:
            raise TypeError(f"{where}: {target.name} is no resource; declare the schema it shows")
        schema = column_schema(related)
    columns = tuple(schema.model_fields)
    missing = [name for name in columns if name not in target.c]
    if missing:
        raise TypeError(f"{where}: {schema.__name__} shows {missing}, not columns")
    assert local.key is not None
    return ToOne(expand.name, target, local.key, columns, schema, related)


def to_many(resource: Resource, expand: Expand) -> ToMany:
    where = f"{resource.plural}: expand {expand.name!r}"
    relationship = _relationship(resource, expand.name)
    if relationship.direction is not ONETOMANY:
        raise TypeError(f"{where} is not a to-many relation")
    [(_local, remote)] = relationship.local_remote_pairs
    child = resource_of(remote.table) if isinstance(remote.table, Table) else None
    if child is None:
        raise TypeError(f"{where}: its rows are no registered resource")
    if expand.default:
        raise TypeError(f"{where}: a to-many relation is never a default expansion")
    if expand.max_items < 1:
        raise TypeError(f"{where}: max_items must be at least 1")
    assert isinstance(remote, Column)
    return ToMany(expand.name, child, remote.key, expand.max_items)


@dataclass(frozen=True)
class Relations:
    """A resource's expandable relations, by name."""

    to_one: dict[str, ToOne]
    to_many: dict[str, ToMany]
    defaults: tuple[str, ...]  # the to-one relations every read nests
    # Per to-many relation, the child's own to-one relations it may nest (`comments.author`).
    nested: dict[str, dict[str, ToOne]]

    @cached_property
    def optional(self) -> dict[str, ToOne]:
        """The to-one relations nested only when `expand` names them."""
        return {name: one for name, one in self.to_one.items() if name not in self.defaults}

    @cached_property
    def fields(self) -> tuple[str, ...]:
        """What filters and sorts may name across to-one relations: `owner.full_name` (not
        `owner.id`, which is `owner_id`)."""
        return tuple(
            f"{name}.{column}"
            for name, relation in self.to_one.items()
            for column in relation.columns
            if column != "id"
        )

    @cached_property
    def names(self) -> tuple[str, ...]:
        """What `expand` may name, nested ones included."""
        inner = [f"{name}.{child}" for name, ones in self.nested.items() for child in ones]
        return (*self.to_one, *self.to_many, *inner)


def resolve(resource: Resource) -> Relations:
    """Resolve the declaration; call it once every model module is imported (a Relationship()
    may name a model by a string)."""
    ones: dict[str, ToOne] = {}
    many: dict[str, ToMany] = {}
    for expand in resource.expand:
        if _relationship(resource, expand.name).direction is MANYTOONE:
            ones[expand.name] = to_one(resource, expand)
        else:
            many[expand.name] = to_many(resource, expand)
    defaults = tuple(expand.name for expand in resource.expand if expand.default)
    nested = {  # not the parent itself again (a comment's post, inside its post)
        name: {
            inner: one
            for inner, one in _optional_to_one(relation.child).items()
            if one.local_key != relation.foreign_key
        }
        for name, relation in many.items()
    }
    return Relations(ones, many, defaults, nested)


def _optional_to_one(resource: Resource) -> dict[str, ToOne]:
    return {
        expand.name: to_one(resource, expand)
        for expand in resource.expand
        if not expand.default and _relationship(resource, expand.name).direction is MANYTOONE
    }


def default_expansions(resource: Resource) -> tuple[ToOne, ...]:
    """The relations every read nests."""
    return tuple(to_one(resource, expand) for expand in resource.expand if expand.default)
