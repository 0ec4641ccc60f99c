"""The statements of one resource, each built once per shape and kept.

Building and cache-keying a SQLAlchemy statement per request cost more than running it, so
every statement here has named bind parameters (`app.crud.binds`) and is built the first time
its shape is asked for: a list plan, a kind of viewer, the columns written, the shape of the
If-Match tags.

Clients choose list shapes (which filters, which sort), so the kept statements are bounded by
memory: each is accounted SHAPE_BYTES plus PART_BYTES per part of its shape (a filter, a sort
key, an If-Match tag...), about what a list page's statements hold (measured with tracemalloc;
a page with embeds is a subquery and its stamped outer SELECT), and past MAX_SHAPE_BYTES, 4 MiB
per resource, the least recently used go: some 150 shapes of a few filters. The worker's
compiled SQL is bounded the same way (`app.core.statements`).
"""

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Insert,
    Integer,
    Label,
    Select,
    String,
    Update,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.dml import ReturningDelete

from app.core.statements import LRUCache
from app.crud import binds, keyset
from app.crud.access import Access, ViewerKind, symbolic_viewer
from app.crud.across import to_one_condition, to_one_sort
from app.crud.conditional import ConditionalWrites, TagCount
from app.crud.filters import AnyOf, ValueList, condition_sql
from app.crud.plan import ListPlan, sort_keys
from app.crud.projection import Projection
from app.crud.resource import Resource

CHILDREN_RANK = "_rank"
CHILDREN_TOTAL = "_children_total"
MAX_SHAPE_BYTES = 4 * 2**20
SHAPE_BYTES = 18_000
PART_BYTES = 2_400
StatementT = TypeVar("StatementT")


@dataclass(frozen=True)
class OffsetStatements:
    page: Select[Any]  # with the count as the `_total` column
    count: Select[Any]  # the count alone, for a page past the end
    matching: Select[Any]  # the matching rows' ids, to estimate or count them all


def parts(key: Hashable) -> int:
    """How many parts a shape has; its statement grows with them."""
    if isinstance(key, ListPlan):
        shape = (key.conditions, key.sort, key.scope, key.keyset or (), key.expand)
        return sum(len(part) for part in shape)
    if isinstance(key, tuple):
        return sum(parts(part) for part in key)
    return 1


class ResourceStatements:
    def __init__(self, resource: Resource, access: Access, projection: Projection) -> None:
        self.resource = resource
        self.access = access
        self.projection = projection
        self.conditional = ConditionalWrites(access)
        self.table = projection.table
        self.relations = projection.relations
        self.pk = self.table.c.id
        self.shapes: LRUCache[Hashable, Any] = LRUCache(MAX_SHAPE_BYTES)

    def shaped(self, key: Hashable, build: Callable[[], StatementT]) -> StatementT:
        """The statement built for this shape: `build()` the first time, then reused."""
        statement: StatementT | None = self.shapes.get(key)
        if statement is None:
            statement = build()
            self.shapes.put(key, statement, SHAPE_BYTES + PART_BYTES * parts(key))
        return statement

    def _by_id(self, kind: ViewerKind) -> ColumnElement[bool]:
        visible = self.access.visible(symbolic_viewer(kind))
        return (self.pk == bindparam(binds.ITEM_ID, type_=Integer)) & visible

    def get(self, kind: ViewerKind, to_one: tuple[str, ...] = ()) -> Select[Any]:
        """Read one visible row by id, with its to-one relations."""
        return self.shaped(
            ("get", kind, to_one),
            lambda: self.projection.select(kind, to_one).where(self._by_id(kind)),
        )

    def read_back(self, kind: ViewerKind, to_one: tuple[str, ...]) -> Select[Any]:
        """The row a write just made or changed, with its relations as the writer sees them."""
        return self.shaped(
            ("read-back", kind, to_one),
            lambda: self.projection.select(kind, to_one).where(
                self.pk == bindparam(binds.ITEM_ID, type_=Integer)
            ),
        )

    def exists(self, kind: ViewerKind) -> Select[Any]:
        return self.shaped(("exists", kind), lambda: select(self.pk).where(self._by_id(kind)))

    # -- lists ------------------------------------------------------------------------------

    def where(self, plan: ListPlan) -> list[ColumnElement[bool]]:
        clauses = [self.access.visible(symbolic_viewer(plan.viewer))]
        for condition in plan.conditions:
            relation, _, related_column = condition.field.partition(".")
            if related_column:
                to_one = self.relations.to_one[relation]
                clauses.append(
                    to_one_condition(self.table, to_one, plan.viewer, related_column, condition)
                )
            else:
                clauses.append(condition_sql(self.table.c[condition.field], condition))
        if plan.searched:
            pattern = bindparam(binds.SEARCH, type_=String())
            columns = (self.table.c[name] for name in self.resource.search_fields)
            clauses.append(or_(*(column.ilike(pattern, escape="\\") for column in columns)))
        for name in plan.scope:
            column = self.table.c[name]
            clauses.append(column == bindparam(binds.scope(name), type_=column.type))
        return clauses

    def sort_columns(self, related: list[Label[Any]]) -> dict[str, ColumnElement[Any]]:
        """The sort's columns by field: the table's, and the to-one relations' values."""
        columns: dict[str, ColumnElement[Any]] = dict(self.table.c)
        columns.update((value.name, value) for value in related)
        return columns

    def keyset_page(self, plan: ListPlan) -> Select[Any]:
        """A cursor page: the rows after the cursor, one more than the page."""
        assert plan.keyset is not None

        def build() -> Select[Any]:
            assert plan.keyset is not None
            related = to_one_sort(self.table, self.relations, plan.viewer, plan.sort)
            columns = self.sort_columns(related)
            return (
                self.projection.select(plan.viewer, plan.expand)
                .add_columns(*related)
                .where(*self.where(plan), keyset.after(columns, plan.sort, plan.keyset))
                .order_by(*keyset.order_by(columns, plan.sort))
                .limit(bindparam(binds.LIMIT, type_=Integer))
            )

        return self.shaped(plan, build)

    def offset_page(self, plan: ListPlan) -> OffsetStatements:
        return self.shaped(plan, lambda: self._offset_page(plan))

    def _offset_page(self, plan: ListPlan) -> OffsetStatements:
        where = self.where(plan)
        matching = select(self.pk).where(*where)
        count_limit = self.resource.count_limit
        if count_limit is None:
            count = select(func.count()).select_from(self.table).where(*where)
        else:  # stops after count_limit + 1 rows
            counted = matching.limit(count_limit + 1).subquery()
            count = select(func.count()).select_from(counted)
        # An uncorrelated scalar subquery runs once (an InitPlan), while the page itself still
        # walks the sort index: one round trip, unlike count(*) OVER () which materialises and
        # sorts every matching row.
        embeds = bool(self.projection.embeds(plan.expand))
        related = to_one_sort(self.table, self.relations, plan.viewer, plan.sort)
        rows = (
            self.projection.select(plan.viewer, plan.expand, stamps=not embeds)
            .add_columns(*related)
            .where(*where)
            .order_by(*keyset.order_by(self.sort_columns(related), plan.sort))
            .add_columns(count.scalar_subquery().label("_total"))
            .limit(bindparam(binds.LIMIT, type_=Integer))
            .offset(bindparam(binds.OFFSET, type_=Integer))
        )
        if not embeds:
            return OffsetStatements(rows, count, matching)
        # The relations' ETag digests over the page alone, in the page's order.
        page = rows.subquery("page")
        stamped = select(*self.projection.stamped(page, plan.expand)).order_by(
            *keyset.order_by(page.c, plan.sort)
        )
        return OffsetStatements(stamped, count, matching)

    # -- writes -----------------------------------------------------------------------------

    def _value_binds(self, names: Sequence[str]) -> dict[str, Any]:
        return {
            name: bindparam(binds.column_value(name), type_=self.table.c[name].type)
            for name in names
        }

    def insert(self, names: tuple[str, ...]) -> Insert:
        return insert(self.table).values(self._value_binds(names))

    def insert_all(self, varying: tuple[str, ...], common: tuple[str, ...]) -> Insert:
        """PostgreSQL: many rows in one statement, each `varying` column's values one typed
        array (`INSERT ... SELECT unnest(:a), unnest(:b), :c`), each `common` one value for
        every row: one shape whatever the row count."""
        return insert(self.table).from_select([*varying, *common], self.rows_of(varying, common))

    def rows_of(self, varying: tuple[str, ...], common: tuple[str, ...]) -> Select[Any]:
        arrays = [
            func.unnest(bindparam(binds.column_value(name), type_=ARRAY(self.table.c[name].type)))
            for name in varying
        ]
        return select(*arrays, *self._value_binds(common).values())

    def update(self, kind: ViewerKind, names: tuple[str, ...], tags: TagCount) -> Update:
        return (
            update(self.table)
            .where(*self.conditional.target(kind, tags))
            .values(
                **self._value_binds((*names, "updated_at")),
                version=self.table.c.version + 1,
            )
        )

    def delete(self, kind: ViewerKind, tags: TagCount) -> ReturningDelete[Any]:
        def build() -> ReturningDelete[Any]:
            target = self.conditional.target(kind, tags)
            return delete(self.table).where(*target).returning(self.pk)

        return self.shaped(("delete", kind, tags), build)

    def written(
        self,
        key: Hashable,
        build: Callable[[], Insert | Update],
        kind: ViewerKind,
        to_one: tuple[str, ...],
    ) -> Select[Any]:
        """PostgreSQL: the write and the read of its result in one statement (a
        data-modifying CTE joined to its to-one relations)."""

        def build_read() -> Select[Any]:
            written = build().returning(*self.table.c).cte("written")
            from_clause, columns = self.projection.joined(written, kind, to_one)
            return select(*columns).select_from(from_clause)

        return self.shaped(("written", key, kind, to_one), build_read)

    def children(
        self, kind: ViewerKind, foreign_key: str, limit: int, to_one: tuple[str, ...]
    ) -> Select[Any]:
        """The visible rows whose `foreign_key` is one of the PARENT_IDS: per parent the first
        `limit` in the default sort, each with the parent's count of them (a to-many
        relation of the parent resource, app/crud/children.py)."""

        def build() -> Select[Any]:
            parent = self.table.c[foreign_key]
            order = keyset.order_by(
                self.table.c, sort_keys(self.resource, self.resource.default_sort)
            )
            ranked = (
                self.projection.select(kind, to_one, stamps=False)
                .add_columns(
                    func.row_number()
                    .over(partition_by=parent, order_by=order)
                    .label(CHILDREN_RANK),
                    func.count().over(partition_by=parent).label(CHILDREN_TOTAL),
                )
                .where(
                    AnyOf(parent, bindparam(binds.PARENT_IDS, type_=ValueList(parent.type))),
                    # The parents were read under this viewer's visibility.
                    self.access.visible(symbolic_viewer(kind), parents_seen=foreign_key),
                )
                .subquery("ranked")
            )
            return (
                select(*self.projection.stamped(ranked, to_one))
                .where(ranked.c[CHILDREN_RANK] <= limit)
                .order_by(ranked.c[foreign_key], ranked.c[CHILDREN_RANK])
            )

        return self.shaped(("children", kind, foreign_key, limit, to_one), build)

    def written_id(self, key: Hashable, build: Callable[[], Insert | Update]) -> Any:
        """Elsewhere: the write returning the id (a read by id follows in the transaction)."""
        return self.shaped(("written-id", key), lambda: build().returning(self.pk))
