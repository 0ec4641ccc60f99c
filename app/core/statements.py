"""SQL text for long-lived SQLAlchemy Core statements, compiled once and reused.

The generic layer builds each statement once per shape, with named `bindparam()`s, and keeps
it. Compiling it once per statement object (not per call, which would also compute
SQLAlchemy's cache key every time) leaves two steps per call: the bind values, and each
bind's type processing (`UTCDateTime`, say). Only public SQLAlchemy API is used.
"""

from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler

# Values for a statement's named `bindparam()`s.
Params = Mapping[str, Any]
Processor = Callable[[Any], Any]
# Entries past this (ad-hoc statements that were not kept) start the cache over.
MAX_STATEMENTS = 2000


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

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.entries: dict[int, tuple[Executable, Compiled]] = {}

    def render(self, statement: Executable, values: Params) -> tuple[str, MutableMapping[str, Any]]:
        entry = self.entries.get(id(statement))
        if entry is None:
            if len(self.entries) >= MAX_STATEMENTS:
                self.entries.clear()
            entry = self.entries[id(statement)] = (statement, Compiled(statement, self.dialect))
        compiled = entry[1]
        return compiled.sql, compiled.parameters(values)
