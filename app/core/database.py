"""The worker's one connection pool, and the two ways requests use it.

PostgreSQL: psycopg's pool is the only pool. The generic layer runs its compiled Core
statements on pooled connections directly (autocommit reads: no BEGIN/ROLLBACK round trips,
no pre-ping; psycopg prepares hot statements server-side by itself). The SQLAlchemy engine
behind ORM sessions (auth, users, scripts, the readiness check) borrows from the same pool:
`NullPool` plus `async_creator`, and `close_returns=True` makes its close() a return. So a
worker never holds more than DB_POOL_SIZE connections. SQLite has no pool to share: the
same statements run on the SQLAlchemy engine.

Outages: a broken connection surfaces as 503 once. From then on, until one direct connection
succeeds, requests do not queue on the pool (whose reconnect attempts back off for minutes)
but share one connection attempt, so they answer 503 within DB_CONNECT_TIMEOUT; when it
succeeds, the pool is replaced by a fresh one, discarding every stale connection at once.
Waiting for a busy pool (up to DB_POOL_TIMEOUT) stays a wait, not an error.
"""

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from types import TracebackType
from typing import Any, Protocol

from psycopg import AsyncConnection as PsycopgConnection
from psycopg import AsyncCursor
from psycopg.abc import Params as DriverParams
from psycopg.errors import Diagnostic
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.sql import Executable

from app.core.config import Settings
from app.core.db import create_sessionmaker, create_sqlite_engine
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


class Database:
    """`connect()` runs each statement on its own (autocommit), `transaction()` several as one;
    `engine` and `sessionmaker` serve ORM sessions, from the same pool."""

    def __init__(self, settings: Settings) -> None:
        self.observers: list[Observer] = []
        self.pool: AsyncConnectionPool[PooledConnection] | None = None
        if settings.is_sqlite:
            self.engine = create_sqlite_engine(settings)
        else:
            self.conninfo = settings.sqlalchemy_url.set(drivername="postgresql").render_as_string(
                hide_password=False
            )
            self.pool_size = settings.DB_POOL_SIZE
            self.pool_timeout = settings.DB_POOL_TIMEOUT
            self.connect_kwargs: dict[str, Any] = {
                "autocommit": True,
                "connect_timeout": settings.DB_CONNECT_TIMEOUT,
                "options": (
                    f"-c statement_timeout={settings.DB_STATEMENT_TIMEOUT_MS} -c timezone=UTC"
                ),
            }
            self.pool = self._new_pool()
            self.engine = create_async_engine(
                settings.sqlalchemy_url,
                poolclass=NullPool,
                async_creator=self.acquire,
                # Each ORM checkout turns autocommit off (psycopg starts transactions again).
                isolation_level="READ COMMITTED",
            )
            self.cache = StatementCache(self.engine.dialect)
            # Unknown until a connection succeeds; False again after a broken connection.
            self.reachable = False
            self.pool_broken = False
            self._probe: asyncio.Task[None] | None = None
            self._retired: set[asyncio.Task[None]] = set()
        self.autocommit_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self.sessionmaker = create_sessionmaker(self.engine)

    def _new_pool(self) -> AsyncConnectionPool[PooledConnection]:
        return AsyncConnectionPool(
            self.conninfo,
            connection_class=PooledConnection,
            min_size=1,
            max_size=self.pool_size,
            timeout=self.pool_timeout,
            kwargs=self.connect_kwargs,
            close_returns=True,
            open=False,
        )

    async def open(self) -> None:
        if self.pool is not None:
            await self.pool.open(wait=False)

    async def close(self) -> None:
        await self.engine.dispose()
        if self.pool is not None:
            await self.pool.close()
            await asyncio.gather(*self._retired)

    async def __aenter__(self) -> "Database":
        await self.open()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _check_reachable(self) -> None:
        """One direct connection attempt; raises OperationalError (503) while it fails."""
        connection = await PsycopgConnection.connect(self.conninfo, **self.connect_kwargs)
        await connection.close()
        assert self.pool is not None
        if self.pool_broken or self.pool.get_stats().get("connections_errors", 0):
            # The old pool holds stale connections and reconnect attempts backing off.
            old, self.pool = self.pool, self._new_pool()
            self.pool_broken = False
            await self.pool.open(wait=False)
            retiring = asyncio.create_task(old.close())
            self._retired.add(retiring)
            retiring.add_done_callback(self._retired.discard)
        self.reachable = True

    async def acquire(self) -> PooledConnection:
        """A pooled connection in autocommit; its close() (or `release`) returns it."""
        if not self.reachable:
            if self._probe is None or self._probe.done():
                self._probe = asyncio.create_task(self._check_reachable())
                # Its error is retrieved even if every request waiting on it went away.
                self._probe.add_done_callback(lambda task: task.cancelled() or task.exception())
            # Shared by every request that arrives while it runs; shielded from their cancels.
            await asyncio.shield(self._probe)
        assert self.pool is not None
        try:
            connection = await self.pool.getconn()
        except PoolTimeout:
            # Busy or down: the next request finds out with one connection attempt.
            self.reachable = False
            raise
        if not connection.autocommit:  # an ORM session had it last
            await connection.set_autocommit(True)
        return connection

    async def release(self, connection: PooledConnection) -> None:
        if connection.broken:
            self.reachable = False
            self.pool_broken = True
        await connection.close()  # back to the pool it came from (close_returns)

    @asynccontextmanager
    async def _checkout(self) -> AsyncIterator[DriverConnection]:
        connection = await self.acquire()
        try:
            yield DriverConnection(connection, self.cache, self.observers)
        finally:
            await self.release(connection)

    def connect(self) -> AbstractAsyncContextManager[Connection]:
        """One connection for a few statements, each committed on its own."""
        if self.pool is not None:
            return self._checkout()
        return self._engine_connection()

    @asynccontextmanager
    async def _engine_connection(self) -> AsyncIterator[Connection]:
        async with self.autocommit_engine.connect() as connection:
            yield EngineConnection(connection)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """One connection whose statements commit together, or not at all."""
        if self.pool is None:
            async with self.engine.begin() as connection:
                yield EngineConnection(connection)
            return
        async with self._checkout() as driver:
            try:
                async with driver.connection.transaction():
                    yield driver
            finally:
                for observe in self.observers:
                    observe("END", id(driver.connection))
