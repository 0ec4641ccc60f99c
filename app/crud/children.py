"""To-many expansions: a page's children, one statement per relation for all its parents.

`GET /posts?expand=comments` reads the page, then every visible comment of those posts in one
statement, ranked per post in the comments' default sort: the first `max_items` of each come
back, with each post's count of visible comments beside them (window functions, on both
databases). The cost is one statement per relation, whatever the page size.
"""

from collections.abc import Sequence
from typing import Any

from app.core.connections import Connection
from app.core.digest import digest_text
from app.crud import binds
from app.crud.access import Access, viewer_kind
from app.crud.expand import Expansion
from app.crud.projection import Projection
from app.crud.relations import Relations, resolve
from app.crud.resource import Viewer
from app.crud.statements import CHILDREN_TOTAL, ResourceStatements

Item = dict[str, Any]


class Children:
    """The to-many relations of one resource, read for a list of its rows."""

    def __init__(self, relations: Relations) -> None:
        self.relations = relations
        self.readers: dict[str, tuple[Projection, ResourceStatements]] = {}

    def reader(self, name: str) -> tuple[Projection, ResourceStatements]:
        """The child resource's projection and statements (made when first needed: two
        resources may each nest the other)."""
        if name not in self.readers:
            child = self.relations.to_many[name].child
            projection = Projection(child, resolve(child))
            self.readers[name] = projection, ResourceStatements(child, Access(child), projection)
        return self.readers[name]

    async def nest(
        self, connection: Connection, items: Sequence[Item], viewer: Viewer, expansion: Expansion
    ) -> list[tuple[int, ...]]:
        """Add each requested to-many relation to every item (its first rows, and
        `<name>_total`); returns each item's digests of them, for its ETag."""
        if not expansion.to_many or not items:
            return [()] * len(items)
        digests: list[list[int]] = [[] for _ in items]
        values = {binds.PARENT_IDS: [item["id"] for item in items], binds.VIEWER_ID: viewer.id}
        kind = viewer_kind(viewer)
        for name, to_one in expansion.to_many:
            relation = self.relations.to_many[name]
            projection, statements = self.reader(name)
            statement = statements.children(kind, relation.foreign_key, relation.max_items, to_one)
            found: dict[int, list[Item]] = {}
            totals: dict[int, int] = {}
            shown: dict[int, list[tuple[Any, ...]]] = {}
            for row in await connection.rows(statement, values):
                parent = row[relation.foreign_key]
                found.setdefault(parent, []).append(projection.shape(row, to_one))
                totals[parent] = row[CHILDREN_TOTAL]
                state = (row["id"], row["version"], *projection.stamps(row, to_one))
                shown.setdefault(parent, []).append(state)
            for item, parts in zip(items, digests, strict=True):
                parent = item["id"]
                item[name] = found.get(parent, [])
                item[relation.total] = totals.get(parent, 0)
                parts.append(digest_text(repr((shown.get(parent, []), item[relation.total]))))
        return [tuple(parts) for parts in digests]
