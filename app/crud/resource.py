"""The declaration a resource module writes beside its SQLModel classes."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, ColumnElement, PrimaryKeyConstraint, Table, UniqueConstraint
from sqlmodel import SQLModel

from app.crud.sync import schema as sync_schema


def table_of(model: type[SQLModel]) -> Table:
    """The SQLAlchemy table of a `table=True` model."""
    table = getattr(model, "__table__", None)
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not a table model")
    return table


def index_leaders(table: Table) -> set[str]:
    """Columns that lead an index, a unique constraint or the primary key: the first column,
    the one an ORDER BY can walk the index by."""
    leaders = set()
    for index in table.indexes:
        first = index.expressions[0] if index.expressions else None
        if isinstance(first, Column):  # not an expression such as lower(title)
            leaders.add(first.key)
    for constraint in table.constraints:
        if isinstance(constraint, PrimaryKeyConstraint | UniqueConstraint) and constraint.columns:
            leaders.add(next(iter(constraint.columns)).key)
    return leaders


class Read(StrEnum):
    PUBLIC = "public"
    AUTHENTICATED = "authenticated"
    OWNER = "owner"


class Write(StrEnum):
    OWNER = "owner"
    AUTHENTICATED = "authenticated"
    SUPERUSER = "superuser"


OPERATIONS = frozenset({"list", "get", "create", "update", "replace", "delete"})


@dataclass(frozen=True)
class Viewer:
    """Who is asking: None for anonymous callers.

    A visibility rule gets a Viewer whose `id` may be a bound parameter (statements built once
    and reused), so it should only compare `viewer.id` in SQL and test it against None.
    """

    id: Any
    is_superuser: bool = False


@dataclass(frozen=True)
class Expand:
    """A relation of the table model (a SQLModel `Relationship()`) that reads may nest, when a
    request names it in `expand=` or, for a `default` one, always (a post's `owner`).

    `schema` is what a nested row shows: by default the related resource's Public schema (its
    own columns); a public profile for users, never their email. A to-many relation nests at
    most `max_items` rows, in the child resource's default sort, beside `<name>_total`.
    """

    name: str  # the Relationship attribute of the table model
    schema: type[SQLModel] | None = None
    default: bool = False
    max_items: int = 20


@dataclass(frozen=True)
class Parent:
    """A foreign key whose target must exist and be visible to the caller on writes.

    With `inherits_visibility`, a row is visible only when its parent row is (a comment when
    its post is): the generic layer adds that rule to every read, and leaves it out where the
    parents were just read under the same viewer's visibility (a post's nested comments).
    """

    field: str
    resource: "Resource"
    nested_list: bool = False  # also serve `GET /<parent>/{id}/<plural>`
    inherits_visibility: bool = False


@dataclass(frozen=True)
class ViewerDeps:
    """Dependencies resolving the caller, supplied by the API layer (it knows the user model)."""

    optional: Callable[..., Awaitable[Viewer]]  # anonymous callers get Viewer(id=None)
    required: Callable[..., Awaitable[Viewer]]  # 401 for anonymous callers
    # The caller a `?ticket=` names (event streams, for browsers' EventSource), or None.
    ticket: Callable[..., Awaitable[Viewer | None]]


def singular_of(plural: str) -> str:
    """The usual English singular: categories -> category, boxes -> box, posts -> post."""
    if plural.endswith("ies") and len(plural) > 3:
        return plural[:-3] + "y"
    if plural.endswith(("sses", "shes", "ches", "xes", "zes")):
        return plural[:-2]
    if plural.endswith("s") and not plural.endswith(("ss", "us", "is")):
        return plural[:-1]
    return plural


# (resource table, viewer) -> a WHERE clause limiting the rows this viewer may see, or None.
Visibility = Callable[[Any, Viewer], ColumnElement[bool] | None]


@dataclass
class Resource:
    """Everything the generic layer needs to serve `/api/v1/<plural>`."""

    table: type[SQLModel]
    create: type[SQLModel]
    update: type[SQLModel]
    public: type[SQLModel]
    plural: str = ""  # the URL segment; default: the table's name
    singular: str = ""  # one of them, in the docs ("Get a post"); default: derived from plural
    read: Read = Read.PUBLIC
    write: Write = Write.OWNER
    owner_field: str | None = None
    filter_fields: tuple[str, ...] | None = None  # default: the Public schema's scalar fields
    # Default: those of them an index leads (see `index_leaders`). A sort by any other column
    # reads and sorts every visible row on each request.
    sort_fields: tuple[str, ...] | None = None
    search_fields: tuple[str, ...] = ()
    visibility: Visibility | None = None
    expand: tuple[Expand, ...] = ()
    parents: tuple[Parent, ...] = ()
    operations: frozenset[str] = OPERATIONS
    # `POST`, `PATCH` and `DELETE /<plural>/batch` (with create, update and delete)
    bulk: bool = True
    # A unique column (one) to upsert on: `PUT /<plural>/by-<column>/{value}` and, with
    # `bulk`, `PUT /<plural>/batch`.
    upsert_key: tuple[str, ...] | None = None
    # `GET /<plural>/changes` and `/events`: delta sync and the live feed (app/crud/sync).
    sync: bool = True
    default_sort: str = "id"
    # Offset pages count matching rows exactly up to this many; past it `total` is the
    # planner's estimate and `total_estimated` is true (PostgreSQL; SQLite counts them all).
    # None: always exact, which costs a scan of every matching row on each page.
    count_limit: int | None = None
    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.plural = self.plural or self.sa_table.name
        self.singular = self.singular or singular_of(self.plural)
        self.name = self.table.__name__
        unknown = self.operations - OPERATIONS
        if unknown:
            raise ValueError(f"{self.plural}: unknown operations {sorted(unknown)}")
        for schema in (self.create, self.update):
            if schema.model_config.get("extra") != "forbid":
                raise TypeError(f"{schema.__name__} must forbid unknown fields (extra='forbid')")
        if any(parent.inherits_visibility and parent.resource is self for parent in self.parents):
            raise ValueError(f"{self.plural}: a row cannot inherit visibility from its own table")
        if self.upsert_key is not None:
            check_upsert_key(self.sa_table, self.upsert_key, self.plural)
        if (self.read is Read.OWNER or self.write is Write.OWNER) and not self.owner_field:
            raise ValueError(f"{self.plural}: an owner policy needs owner_field")
        scalars = tuple(name for name in self.public.model_fields if name in self.columns)
        if self.filter_fields is None:
            self.filter_fields = scalars
        if self.sort_fields is None:
            leaders = index_leaders(self.sa_table)
            self.sort_fields = tuple(name for name in scalars if name in leaders)
        default = {key.strip().removeprefix("-") for key in self.default_sort.split(",")}
        if not default <= set(self.sort_fields):
            raise ValueError(
                f"{self.plural}: default_sort {self.default_sort!r} is not in sort_fields "
                f"{self.sort_fields}"
            )

    @property
    def sa_table(self) -> Table:
        return table_of(self.table)

    @property
    def columns(self) -> dict[str, Any]:
        return dict(self.sa_table.columns.items())


def check_upsert_key(table: Table, key: tuple[str, ...], plural: str) -> None:
    """An upsert key is one column with a unique constraint or index of its own."""
    if len(key) != 1 or key[0] not in table.c:
        raise ValueError(f"{plural}: upsert_key names one column of the table, not {key}")
    column = table.c[key[0]]
    uniques = [
        {col.name for col in constraint.columns}
        for constraint in table.constraints
        if isinstance(constraint, UniqueConstraint)
    ] + [{col.name for col in index.columns} for index in table.indexes if index.unique]
    if not (column.unique or {column.name} in uniques):
        raise ValueError(f"{plural}: upsert_key {key[0]!r} must be unique (unique=True)")


registry: list[Resource] = []


def register(resource: Resource) -> Resource:
    """Declare a resource: `app/api` mounts every registered one."""
    if any(existing.plural == resource.plural for existing in registry):
        raise ValueError(f"resource {resource.plural!r} is registered twice")
    if resource.sync:
        sync_schema.install(resource.sa_table)
    registry.append(resource)
    return resource
