"""Where the generic layer's SQLAlchemy Core statements run, with the fewest round trips.

On PostgreSQL they run straight on psycopg's own pool: each statement shape is compiled
once (keyed like SQLAlchemy's own cache), reads are autocommit (no BEGIN/ROLLBACK) and
there is no pre-ping; psycopg prepares the hot statements server-side by itself. Elsewhere
(SQLite) the same statements run on the SQLAlchemy engine.

Outages: a broken connection surfaces as 503 once. From then on, until one direct connection
succeeds, requests do not queue on the pool (whose reconnect attempts back off for minutes)
but share one connection attempt, so they answer 503 within DB_CONNECT_TIMEOUT; when it
succeeds, the pool is replaced by a fresh one, discarding every stale connection at once.
Waiting for a busy pool (up to DB_POOL_TIMEOUT) stays a wait, not an error.
"""

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

from psycopg import AsyncConnection as PsycopgConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Executable

from app.core.config import Settings

Row = Mapping[str, Any]
# Values for a statement's named `bindparam()`s: such a statement is compiled once and reused.
Params = Mapping[str, Any]
# (sql, connection id): called for each statement sent on the driver path (tests count them).
Observer = Callable[[str, int], None]
MAX_CACHED_SHAPES = 2000


class Connection(Protocol):
    dialect_name: str

    async def rows(self, statement: Executable, params: Params | None = None) -> list[Row]: ...
    async def row(self, statement: Executable, params: Params | None = None) -> Row | None: ...
    async def scalar(self, statement: Executable, params: Params | None = None) -> Any: ...
    async def execute(self, statement: Executable) -> None: ...
    async def planned_rows(self, statement: Executable, params: Params) -> int | None: ...


class EngineConnection:
    """A SQLAlchemy connection behind the `Connection` interface."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        self.dialect_name = connection.dialect.name

    async def rows(self, statement: Executable, params: Params | None = None) -> list[Row]:
        return list((await self.connection.execute(statement, params)).mappings().all())

    async def row(self, statement: Executable, params: Params | None = None) -> Row | None:
        return (await self.connection.execute(statement, params)).mappings().first()

    async def scalar(self, statement: Executable, params: Params | None = None) -> Any:
        return (await self.connection.execute(statement, params)).scalar()

    async def execute(self, statement: Executable) -> None:
        await self.connection.execute(statement)

    async def planned_rows(self, statement: Executable, params: Params) -> int | None:
        return None  # SQLite's planner makes no row estimates


class StatementCache:
    """SQL text per statement shape; fresh parameter values come from the cache key."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.compiled: dict[Any, Any] = {}
        self.prepared: dict[int, tuple[Executable, Any]] = {}

    def render_prepared(self, statement: Executable, values: Params) -> tuple[str, dict[str, Any]]:
        """A long-lived statement with named binds: no cache key to compute per call."""
        entry = self.prepared.get(id(statement))
        if entry is None:
            if len(self.prepared) >= MAX_CACHED_SHAPES:
                self.prepared.clear()
            # The entry holds the statement, so no other object can come to have its id.
            entry = self.prepared[id(statement)] = (
                statement,
                statement.compile(dialect=self.dialect),
            )
        compiled = entry[1]
        params = self._with_defaults(compiled, compiled.construct_params(values))
        return compiled.string, self._processed(compiled, params)

    @staticmethod
    def _with_defaults(compiled: Any, params: dict[str, Any]) -> dict[str, Any]:
        """Python-side column defaults, which SQLAlchemy's execution context would fill in."""
        for column in (*compiled.insert_prefetch, *compiled.update_prefetch):
            if params.get(column.key) is None:
                default = column.default if column in compiled.insert_prefetch else column.onupdate
                params[column.key] = default.arg(None) if default.is_callable else default.arg
        return params

    @staticmethod
    def _processed(compiled: Any, params: dict[str, Any]) -> dict[str, Any]:
        processors = compiled._bind_processors
        for name, value in params.items():
            if name in processors and value is not None:
                params[name] = processors[name](value)
        return params

    def render(self, statement: Executable) -> tuple[str, dict[str, Any]]:
        cache_key = statement._generate_cache_key()  # type: ignore[attr-defined]
        assert cache_key is not None, "every generated statement is cacheable"
        compiled = self.compiled.get(cache_key.key)
        if compiled is None:
            if len(self.compiled) >= MAX_CACHED_SHAPES:
                self.compiled.clear()
            compiled = self.dialect.statement_compiler(self.dialect, statement, cache_key=cache_key)
            self.compiled[cache_key.key] = compiled
        params = compiled.construct_params(extracted_parameters=cache_key.bindparams)
        params = self._with_defaults(compiled, params)
        if compiled.post_compile_params:  # IN lists: one placeholder per value
            expanded = compiled._process_parameters_for_postcompile(params)
            params = expanded.parameters
            for name, value in params.items():
                if name in expanded.processors and value is not None:
                    params[name] = expanded.processors[name](value)
            return expanded.statement, params
        return compiled.string, self._processed(compiled, params)


class DriverConnection:
    """A psycopg connection running compiled Core statements."""

    dialect_name = "postgresql"

    def __init__(
        self, connection: PsycopgConnection[Any], cache: StatementCache, observers: list[Observer]
    ) -> None:
        self.connection = connection
        self.cache = cache
        self.observers = observers

    async def _run(self, statement: Executable, values: Params | None = None) -> Any:
        if values is None:
            sql, params = self.cache.render(statement)
        else:
            sql, params = self.cache.render_prepared(statement, values)
        for observe in self.observers:
            observe(sql, id(self.connection))
        return await self.connection.execute(sql, params)  # type: ignore[arg-type]

    async def rows(self, statement: Executable, params: Params | None = None) -> list[Row]:
        return await (await self._run(statement, params)).fetchall()  # type: ignore[no-any-return]

    async def row(self, statement: Executable, params: Params | None = None) -> Row | None:
        return await (await self._run(statement, params)).fetchone()  # type: ignore[no-any-return]

    async def scalar(self, statement: Executable, params: Params | None = None) -> Any:
        row = await self.row(statement, params)
        return next(iter(row.values())) if row else None

    async def execute(self, statement: Executable) -> None:
        await self._run(statement)

    async def planned_rows(self, statement: Executable, params: Params) -> int:
        """The planner's estimate of the rows `statement` returns (no rows are read)."""
        sql, values = self.cache.render_prepared(statement, params)
        cursor = await self.connection.execute(f"EXPLAIN (FORMAT JSON) {sql}", values)
        row = await cursor.fetchone()
        assert row is not None
        plan = next(iter(row.values()))
        return int(plan[0]["Plan"]["Plan Rows"])


class Database:
    """`connect()` runs each statement on its own (autocommit: no BEGIN/COMMIT round trips),
    `transaction()` runs several as one."""

    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self.engine = engine
        self.autocommit_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.pool: AsyncConnectionPool[Any] | None = None
        self.observers: list[Observer] = []
        if engine.dialect.name == "postgresql":
            self.cache = StatementCache(engine.dialect)
            self.conninfo = engine.url.set(drivername="postgresql").render_as_string(
                hide_password=False
            )
            self.max_size = settings.DB_POOL_SIZE + settings.DB_MAX_OVERFLOW
            self.pool_timeout = settings.DB_POOL_TIMEOUT
            self.connect_kwargs = {
                "autocommit": True,
                "row_factory": dict_row,
                "connect_timeout": settings.DB_CONNECT_TIMEOUT,
                "options": (
                    f"-c statement_timeout={settings.DB_STATEMENT_TIMEOUT_MS} -c timezone=UTC"
                ),
            }
            self.pool = self._new_pool()
            # Unknown until a connection succeeds; False again after a broken connection.
            self.reachable = False
            self.pool_broken = False
            self._probe: asyncio.Task[None] | None = None
            self._retired: set[asyncio.Task[None]] = set()

    def _new_pool(self) -> AsyncConnectionPool[Any]:
        return AsyncConnectionPool(
            self.conninfo,
            min_size=1,
            max_size=self.max_size,
            timeout=self.pool_timeout,
            kwargs=self.connect_kwargs,
            open=False,
        )

    async def open(self) -> None:
        if self.pool is not None:
            await self.pool.open(wait=False)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
            await asyncio.gather(*self._retired)

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

    @asynccontextmanager
    async def _checkout(self) -> AsyncIterator[DriverConnection]:
        """A pooled connection, for as long as the block runs.

        `getconn`/`putconn` rather than `pool.connection()`: one context manager per request
        instead of three nested ones (each costs a few µs); autocommit statements need none
        of the commit/rollback handling that `pool.connection()` adds, and a transaction
        block does its own.
        """
        if not self.reachable:
            if self._probe is None or self._probe.done():
                self._probe = asyncio.create_task(self._check_reachable())
                # Its error is retrieved even if every request waiting on it went away.
                self._probe.add_done_callback(lambda task: task.cancelled() or task.exception())
            # Shared by every request that arrives while it runs; shielded from their cancels.
            await asyncio.shield(self._probe)
        pool = self.pool
        assert pool is not None
        try:
            connection = await pool.getconn()
        except PoolTimeout:
            # Busy or down: the next request finds out with one connection attempt.
            self.reachable = False
            raise
        try:
            yield DriverConnection(connection, self.cache, self.observers)
        finally:
            if connection.broken:
                self.reachable = False
                self.pool_broken = True
            await pool.putconn(connection)

    def connect(self) -> AbstractAsyncContextManager[Connection]:
        if self.pool is not None:
            return self._checkout()
        return self._engine_connection()

    @asynccontextmanager
    async def _engine_connection(self) -> AsyncIterator[Connection]:
        async with self.autocommit_engine.connect() as connection:
            yield EngineConnection(connection)

    def for_write(self, several_statements: bool) -> Any:
        """`connect()` where a write is one statement, else `transaction()`.

        On PostgreSQL a write and the read of its result are one statement (see
        `Repository.write_returning`); elsewhere they are two, kept together in a transaction.
        """
        if several_statements or self.pool is None:
            return self.transaction()
        return self.connect()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        if self.pool is not None:
            async with self._checkout() as driver:
                try:
                    async with driver.connection.transaction():
                        yield driver
                finally:
                    for observe in self.observers:
                        observe("END", id(driver.connection))
        else:
            async with self.engine.begin() as connection:
                yield EngineConnection(connection)
