"""SQL text for long-lived SQLAlchemy Core statements, compiled once and reused.

The generic layer builds each statement once per shape, with named `bindparam()`s, and keeps
it. Compiling it once per statement object (not per call, which would also compute
SQLAlchemy's cache key every time) leaves two steps per call: the bind values, and each
bind's type processing (`UTCDateTime`, say). Only public SQLAlchemy API is used.

The cache is bounded by memory, not by count. Each entry is accounted ENTRY_BYTES plus
SQL_CHAR_BYTES per character of its SQL, about what compiling a statement keeps (a list page
of 600 to 2,600 characters of SQL keeps 15 to 37 kB, measured with tracemalloc; shorter
statements keep less than they are accounted); past MAX_BYTES, 16 MiB per worker, the least
recently used entries go. That holds some 800 list pages, many times the generic layer's hot
set, which is used on every request and so stays, while one-off statements (an exact count
past `count_limit`) and shapes a client invents only push each other out.
"""

from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, MutableMapping
from typing import Any, Generic, TypeVar

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler

# Values for a statement's named `bindparam()`s.
Params = Mapping[str, Any]
Processor = Callable[[Any], Any]
MAX_BYTES = 16 * 2**20
ENTRY_BYTES = 10_000
SQL_CHAR_BYTES = 10
KeyT = TypeVar("KeyT", bound=Hashable)
ValueT = TypeVar("ValueT")


class LRUCache(Generic[KeyT, ValueT]):
    """Entries whose sizes, in bytes as the caller accounts them, add up to at most
    `max_bytes`; past it, the least recently used go first."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._entries: OrderedDict[KeyT, tuple[ValueT, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: KeyT) -> ValueT | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key: KeyT, value: ValueT, size: int) -> None:
        """Keep `value`; the newest entry stays even when it alone is over the budget."""
        replaced = self._entries.pop(key, None)
        if replaced is not None:
            self.size -= replaced[1]
        self._entries[key] = (value, size)
        self.size += size
        while self.size > self.max_bytes and len(self._entries) > 1:
            _, (_, evicted) = self._entries.popitem(last=False)
            self.size -= evicted


class Compiled:
    """One statement's SQL and how to turn bind values into the driver's parameters."""

    def __init__(self, statement: Executable, dialect: Dialect) -> None:
        assert isinstance(statement, ClauseElement)
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        self.compiled = compiled
        self.sql = compiled.string
        self.processors: dict[str, Processor] = {}
        for name, bind in compiled.binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self.processors[name] = processor
        # Python-side column defaults of an INSERT/UPDATE, which an execution would fill in.
        self.defaults = [
            (column.key, column.default)
            for column in compiled.insert_prefetch
            if column.default is not None
        ] + [
            (column.key, column.onupdate)
            for column in compiled.update_prefetch
            if column.onupdate is not None
        ]

    def parameters(self, values: Params) -> MutableMapping[str, Any]:
        params = self.compiled.construct_params(values)
        for key, default in self.defaults:
            if params.get(key) is None:
                arg = default.arg  # type: ignore[attr-defined]  # ColumnDefault or Sequence
                params[key] = arg(None) if callable(arg) else arg
        for name, processor in self.processors.items():
            value = params.get(name)
            if value is not None:
                params[name] = processor(value)
        return params


class StatementCache:
    """`Compiled` per statement object; the entry holds the statement, so its id stays its own."""

    def __init__(self, dialect: Dialect, max_bytes: int = MAX_BYTES) -> None:
        self.dialect = dialect
        self.entries: LRUCache[int, tuple[Executable, Compiled]] = LRUCache(max_bytes)

    def render(self, statement: Executable, values: Params) -> tuple[str, MutableMapping[str, Any]]:
        entry = self.entries.get(id(statement))
        if entry is None:
            entry = (statement, Compiled(statement, self.dialect))
            size = ENTRY_BYTES + SQL_CHAR_BYTES * len(entry[1].sql)
            self.entries.put(id(statement), entry, size)
        compiled = entry[1]
        return compiled.sql, compiled.parameters(values)
