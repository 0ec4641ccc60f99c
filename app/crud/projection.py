"""What a read returns: the row's columns, its to-one relations' columns, and the ETag's parts.

A to-one relation (a default one such as a post's owner, or one a request names in `expand`)
is a LEFT JOIN whose columns come back labelled `<relation>__<column>`, plus a digest of those
columns for the ETag; `shape` nests them back under the relation's name. A related row the
viewer may not read is not joined: the relation is `null`.
"""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Select, Table, and_, select

from app.core.connections import Row
from app.core.digest import ShownDigest
from app.crud.access import Access, ViewerKind, symbolic_viewer
from app.crud.etag import format_etag
from app.crud.relations import Relations, ToOne
from app.crud.resource import Resource

EMBED_SEPARATOR = "__"
STAMP_PREFIX = "_stamp_"
PRESENT_PREFIX = "_present_"


def nested(row: Row, embed: ToOne) -> dict[str, Any] | None:
    """A to-one relation's labelled columns as an object; None when no row was joined."""
    value = {column: row[f"{embed.name}{EMBED_SEPARATOR}{column}"] for column in embed.columns}
    return value if any(item is not None for item in value.values()) else None


class Projection:
    def __init__(self, resource: Resource, relations: Relations) -> None:
        self.resource = resource
        self.relations = relations
        self.table = resource.sa_table
        self.defaults = tuple(relations.to_one[name] for name in relations.defaults)
        self.default_embeds = {embed.name: embed for embed in self.defaults}
        self.public_fields = [
            name
            for name in resource.public.model_fields
            if name in relations.defaults or name in self.table.c
        ]

    def embeds(self, to_one: Sequence[str] = ()) -> tuple[ToOne, ...]:
        """The default to-one relations, then the requested ones."""
        if not to_one:  # every read's ETag asks: no new tuple for the usual case
            return self.defaults
        return (*self.defaults, *(self.relations.to_one[name] for name in to_one))

    def joined(
        self,
        base: Table | FromClause,
        kind: ViewerKind,
        to_one: Sequence[str] = (),
        stamps: bool = True,
    ) -> tuple[FromClause, list[ColumnElement[Any]]]:
        """FROM clause and columns of a read over `base` (the table, or the rows a write
        returned): its columns, each to-one relation's columns and its stamp for the ETag.

        Without `stamps`, each relation's presence (its id) instead, for `stamped` to digest.
        """
        from_clause: FromClause = base
        columns: list[ColumnElement[Any]] = list(base.c)
        for embed in self.embeds(to_one):
            alias = embed.sa_table.alias(embed.name)
            on = base.c[embed.local_key] == alias.c.id
            if embed.target is not None:
                on = and_(on, Access(embed.target).visible(symbolic_viewer(kind), alias))
            from_clause = from_clause.outerjoin(alias, on)
            columns += [
                alias.c[name].label(f"{embed.name}{EMBED_SEPARATOR}{name}")
                for name in embed.columns
            ]
            if stamps:
                shown = (alias.c[name] for name in embed.columns)
                columns.append(ShownDigest(alias.c.id, *shown).label(STAMP_PREFIX + embed.name))
            else:
                columns.append(alias.c.id.label(PRESENT_PREFIX + embed.name))
        return from_clause, columns

    def select(
        self, kind: ViewerKind, to_one: Sequence[str] = (), stamps: bool = True
    ) -> Select[Any]:
        from_clause, columns = self.joined(self.table, kind, to_one, stamps)
        return select(*columns).select_from(from_clause)

    def stamped(self, page: FromClause, to_one: Sequence[str] = ()) -> list[ColumnElement[Any]]:
        """The columns of rows read without stamps (`select(stamps=False)`), with the stamps.

        An offset page digests only the rows it returns this way: in one SELECT the database
        would compute the digest for every row the OFFSET skips too.
        """
        stamps = [
            ShownDigest(
                page.c[PRESENT_PREFIX + embed.name],
                *(page.c[f"{embed.name}{EMBED_SEPARATOR}{name}"] for name in embed.columns),
            ).label(STAMP_PREFIX + embed.name)
            for embed in self.embeds(to_one)
        ]
        return [*page.c, *stamps]

    def shape(self, row: Row, to_one: Sequence[str] = ()) -> dict[str, Any]:
        """A flat row with labelled relation columns -> the Public schema's fields, in its
        order, then the requested to-one relations."""
        item = {}
        for name in self.public_fields:
            embed = self.default_embeds.get(name)
            item[name] = row[name] if embed is None else nested(row, embed)
        for name in to_one:
            item[name] = nested(row, self.relations.to_one[name])
        return item

    def stamps(self, row: Row, to_one: Sequence[str] = ()) -> tuple[int, ...]:
        return tuple(row[STAMP_PREFIX + embed.name] or 0 for embed in self.embeds(to_one))

    def etag(self, row: Row, to_one: Sequence[str] = (), more: Sequence[int] = ()) -> str:
        """The record's version, then a digest per to-one relation, then `more` (the to-many
        relations' digests)."""
        return format_etag(row["version"], (*self.stamps(row, to_one), *more))
