"""The relations a resource's reads nest, resolved from its table model's `Relationship()`s.

The declaration names them (`Resource.expand`); SQLAlchemy's mapper says where each one
points and through which foreign key, so no column list is kept by hand.
"""

from dataclasses import dataclass

from sqlalchemy import Table
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import MANYTOONE

from app.crud.resource import Expand, Resource


@dataclass(frozen=True)
class ToOne:
    """A to-one relation as SQL: the related table, joined on `local_key` = its id."""

    name: str
    sa_table: Table
    local_key: str  # this table's column holding the related row's id
    columns: tuple[str, ...]  # the related columns its schema shows, in the schema's order


def to_one(resource: Resource, expand: Expand) -> ToOne:
    """Resolve one declared expansion; TypeError names what does not fit."""
    where = f"{resource.plural}: expand {expand.name!r}"
    relationship = sa_inspect(resource.table).relationships.get(expand.name)
    if relationship is None:
        raise TypeError(f"{where} is not a Relationship() of {resource.table.__name__}")
    if relationship.direction is not MANYTOONE:
        raise TypeError(f"{where} is not a to-one relation")
    [(local, remote)] = relationship.local_remote_pairs
    target = remote.table
    if not isinstance(target, Table) or remote.key != "id":
        raise TypeError(f"{where} must reference the id of a table")
    columns = tuple(expand.schema.model_fields)
    missing = [name for name in columns if name not in target.c]
    if missing:
        raise TypeError(f"{where}: {expand.schema.__name__} shows {missing}, not columns")
    return ToOne(expand.name, target, local.key, columns)


def default_expansions(resource: Resource) -> tuple[ToOne, ...]:
    """The relations every read nests."""
    return tuple(to_one(resource, expand) for expand in resource.expand if expand.default)
