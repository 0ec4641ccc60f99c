"""The worker's compiled statements: bounded by bytes, the least recently used out first."""

import gc
import tracemalloc
from typing import Any

from sqlalchemy import Select, column, literal_column, select, table
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from starlette.datastructures import QueryParams

from app.core.config import get_settings
from app.core.statements import (
    ENTRY_BYTES,
    MAX_BYTES,
    SQL_CHAR_BYTES,
    Compiled,
    LRUCache,
    StatementCache,
)
from app.crud.params import ListQuery
from app.crud.plan import ListPlanner
from app.crud.relations import resolve
from app.crud.repository import Repository
from app.crud.resource import Viewer
from app.models.post import posts

DIALECT = PGDialect_psycopg()  # the cache serves the PostgreSQL path; compiling needs no server


def padded(index: int, chars: int) -> Select[Any]:
    """A distinct statement whose SQL is about `chars` characters long."""
    return select(literal_column(f"'{index:08d}{'x' * chars}'").label("padding"))


def test_the_least_recently_used_entries_go_first() -> None:
    cache: LRUCache[str, int] = LRUCache(max_bytes=10)
    cache.put("a", 1, 4)
    cache.put("b", 2, 4)
    assert cache.get("a") == 1  # now the most recently used
    cache.put("c", 3, 4)  # 12 bytes: "b" goes
    assert (cache.get("b"), cache.get("a"), cache.get("c")) == (None, 1, 3)
    assert (cache.size, len(cache)) == (8, 2)
    cache.put("a", 10, 6)  # a replaced entry is accounted at its new size
    assert (cache.size, cache.get("a")) == (10, 10)
    cache.put("huge", 4, 50)  # alone over the budget: kept, and the rest goes
    assert (len(cache), cache.get("huge"), cache.size) == (1, 4, 50)


def test_the_cache_stays_within_its_byte_budget_whatever_it_is_fed() -> None:
    cache = StatementCache(DIALECT)
    statements = [padded(index, 40_000) for index in range(600)]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for statement in statements:
            sql, _ = cache.render(statement, {})
            assert len(sql) > 40_000
        del statements, statement  # from here on, only the cache holds them
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert cache.entries.size <= MAX_BYTES
    assert kept <= MAX_BYTES, f"{kept:,} bytes kept"


def test_a_hot_statement_is_not_compiled_again_while_new_ones_flood_in() -> None:
    cache = StatementCache(DIALECT)
    items = table("items", column("id"))
    hot = select(items.c.id).where(items.c.id > 0)
    cache.render(hot, {})
    compiled = cache.entries.get(id(hot))
    assert compiled is not None
    for index in range(2_500):  # more than any fixed count of entries would hold
        cache.render(select(literal_column(str(index))), {})
        if index % 100 == 0:
            cache.render(hot, {})
            assert cache.entries.get(id(hot)) is compiled, index


FILTERS = [
    ("votes__gte", "1"),
    ("owner_id", "1"),
    ("title__contains", "a"),
    ("id__in", "1,2"),
    ("created_at__lt", "2026-01-01T00:00:00Z"),
    ("published", "true"),
    ("id__ne", "3"),
    ("votes__lte", "9"),
    ("title__startswith", "b"),
    ("content__icontains", "c"),
    ("title", "x"),
    ("votes", "1"),
    ("updated_at__gt", "2026-01-01T00:00:00Z"),
    ("owner_id__in", "1,2,3"),
    ("id__gte", "1"),
    ("content__contains", "q"),
    ("published__ne", "false"),
    ("votes__ne", "5"),
    ("title__ne", "z"),
    ("created_at__gte", "2020-01-01T00:00:00Z"),
]


def test_an_entry_is_accounted_about_what_it_keeps() -> None:
    """ENTRY_BYTES and SQL_CHAR_BYTES against what tracemalloc sees the first compilation
    of a posts list page keep (its SQL, and what it memoizes on the statement), with 0 to
    20 filters: accounted within 0.75 to 1.5 times that."""
    query, planner = ListQuery(posts, resolve(posts)), ListPlanner(posts)
    settings = get_settings()
    for count in (0, 2, 5, 10, 20):
        sent = QueryParams(FILTERS[:count])
        params = query.parse(sent, settings.MAX_OFFSET, settings.MAX_IN_VALUES)
        plan = planner.plan(params, Viewer(id=None), {}).plan
        # Once for what every compilation of such a page memoizes, then a statement of its own.
        Compiled(Repository(posts).statements.offset_page(plan).page, DIALECT)
        statement = Repository(posts).statements.offset_page(plan).page
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            compiled = Compiled(statement, DIALECT)
            gc.collect()
            kept = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        accounted = ENTRY_BYTES + SQL_CHAR_BYTES * len(compiled.sql)
        assert kept * 0.75 <= accounted <= kept * 1.5, (count, accounted, kept)
