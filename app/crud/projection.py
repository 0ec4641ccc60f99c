"""What a read returns: the row's columns, each embed's columns, and the ETag's parts.

An embed (a default expansion: a post's owner) is a LEFT JOIN whose columns come back labelled
`<embed>__<column>`, plus a digest of those columns for the ETag; `shape` nests them
back under the embed's name.
"""

from typing import Any

from sqlalchemy import ColumnElement, FromClause, Select, Table, select

from app.core.database import Row
from app.core.digest import ShownDigest
from app.crud.etag import format_etag
from app.crud.relations import default_expansions
from app.crud.resource import Resource

EMBED_SEPARATOR = "__"
STAMP_PREFIX = "_stamp_"
PRESENT_PREFIX = "_present_"


class Projection:
    def __init__(self, resource: Resource) -> None:
        self.resource = resource
        self.table = resource.sa_table
        self.embeds = {embed.name: embed for embed in default_expansions(resource)}
        self.public_fields = [
            name
            for name in resource.public.model_fields
            if name in self.embeds or name in self.table.c
        ]
        self.from_clause, self.columns = self.joined(self.table)

    def joined(
        self, base: Table | FromClause, stamps: bool = True
    ) -> tuple[FromClause, list[ColumnElement[Any]]]:
        """FROM clause and columns of a read over `base` (the table, or the rows a write
        returned): its columns, each embed's columns and the embed's stamp for the ETag.

        Without `stamps`, each embed's presence (its id) instead, for `stamped` to digest later.
        """
        from_clause: FromClause = base
        columns: list[ColumnElement[Any]] = list(base.c)
        for embed in self.embeds.values():
            alias = embed.sa_table.alias(embed.name)
            from_clause = from_clause.outerjoin(alias, base.c[embed.local_key] == alias.c.id)
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

    def select(self, stamps: bool = True) -> Select[Any]:
        from_clause, columns = (
            (self.from_clause, self.columns) if stamps else self.joined(self.table, stamps=False)
        )
        return select(*columns).select_from(from_clause)

    def stamped(self, page: FromClause) -> list[ColumnElement[Any]]:
        """The columns of rows read without stamps (`select(stamps=False)`), with the stamps.

        An offset page digests only the rows it returns this way: in one SELECT the database
        would compute the digest for every row the OFFSET skips too.
        """
        stamps = [
            ShownDigest(
                page.c[PRESENT_PREFIX + embed.name],
                *(page.c[f"{embed.name}{EMBED_SEPARATOR}{name}"] for name in embed.columns),
            ).label(STAMP_PREFIX + embed.name)
            for embed in self.embeds.values()
        ]
        return [*page.c, *stamps]

    def shape(self, row: Row) -> dict[str, Any]:
        """A flat row with labelled embed columns -> the Public schema's fields, in its order."""
        item = {}
        for name in self.public_fields:
            embed = self.embeds.get(name)
            if embed is None:
                item[name] = row[name]
                continue
            nested = {column: row[f"{name}{EMBED_SEPARATOR}{column}"] for column in embed.columns}
            item[name] = nested if any(v is not None for v in nested.values()) else None
        return item

    def etag(self, row: Row) -> str:
        stamps = tuple(row[STAMP_PREFIX + embed.name] for embed in self.embeds.values())
        return format_etag(row["version"], stamps)
