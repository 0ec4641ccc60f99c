"""What the generic layer runs its statements on: one request's connection, either a pooled
psycopg connection running compiled Core statements (PostgreSQL) or a SQLAlchemy connection
(SQLite)."""

from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from typing import Any, Protocol

from psycopg import AsyncConnection as PsycopgConnection
from psycopg import AsyncCursor
from psycopg.abc import Params as DriverParams
from psycopg.errors import Diagnostic
from psycopg.rows import dict_row
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Executable

from app.core.statements import Params, StatementCache

Row = Mapping[Any, Any]
# (sql, connection id): called for each statement sent on the driver path (tests count them).
Observer = Callable[[str, int], None]


class Connection(Protocol):
    """What the generic layer runs its statements on (one request's connection)."""

    dialect_name: str

    async def rows(self, statement: Executable, params: Params) -> Sequence[Row]: ...
    async def row(self, statement: Executable, params: Params) -> Row | None: ...
    async def scalar(self, statement: Executable, params: Params) -> Any: ...
    async def execute(self, statement: Executable, params: Params) -> None: ...
    async def planned_rows(self, statement: Executable, params: Params) -> int | None: ...


class EngineConnection:
    """A SQLAlchemy connection behind the `Connection` interface (SQLite)."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        self.dialect_name = connection.dialect.name

    async def rows(self, statement: Executable, params: Params) -> Sequence[Row]:
        return (await self.connection.execute(statement, dict(params))).mappings().all()

    async def row(self, statement: Executable, params: Params) -> Row | None:
        return (await self.connection.execute(statement, dict(params))).mappings().first()

    async def scalar(self, statement: Executable, params: Params) -> Any:
        return (await self.connection.execute(statement, dict(params))).scalar()

    async def execute(self, statement: Executable, params: Params) -> None:
        await self.connection.execute(statement, dict(params))

    async def planned_rows(self, statement: Executable, params: Params) -> int | None:
        return None  # SQLite's planner makes no row estimates


class DriverConnection:
    """A pooled psycopg connection running compiled Core statements (PostgreSQL)."""

    dialect_name = "postgresql"

    def __init__(
        self, connection: PsycopgConnection[Any], cache: StatementCache, observers: list[Observer]
    ) -> None:
        self.connection = connection
        self.cache = cache
        self.observers = observers

    async def _cursor(self, sql: str, params: DriverParams) -> AsyncCursor[dict[str, Any]]:
        for observe in self.observers:
            observe(sql, id(self.connection))
        return await self.connection.cursor(row_factory=dict_row).execute(sql, params)

    async def rows(self, statement: Executable, params: Params) -> Sequence[Row]:
        return await (await self._cursor(*self.cache.render(statement, params))).fetchall()

    async def row(self, statement: Executable, params: Params) -> Row | None:
        return await (await self._cursor(*self.cache.render(statement, params))).fetchone()

    async def scalar(self, statement: Executable, params: Params) -> Any:
        row = await self.row(statement, params)
        return next(iter(row.values())) if row else None

    async def execute(self, statement: Executable, params: Params) -> None:
        await self._cursor(*self.cache.render(statement, params))

    async def planned_rows(self, statement: Executable, params: Params) -> int:
        """The planner's estimate of the rows `statement` returns (no rows are read)."""
        sql, values = self.cache.render(statement, params)
        row = await (await self._cursor(f"EXPLAIN (FORMAT JSON) {sql}", values)).fetchone()
        assert row is not None
        plan = next(iter(row.values()))
        return int(plan[0]["Plan"]["Plan Rows"])


class PooledConnection(PsycopgConnection[Any]):
    """A pool connection that SQLAlchemy may borrow again and again.

    To SQLAlchemy's `NullPool` every checkout is a new connection, and its psycopg dialect
    adds its notice logger each time: keep one copy instead of a list that grows.
    """

    def add_notice_handler(self, callback: Callable[[Diagnostic], None]) -> None:
        with suppress(ValueError):
            self.remove_notice_handler(callback)
        super().add_notice_handler(callback)
