"""Where the generic layer's SQLAlchemy Core statements run, with the fewest round trips.

On PostgreSQL they run straight on psycopg's own pool: each statement shape is compiled
once (keyed like SQLAlchemy's own cache), reads are autocommit (no BEGIN/ROLLBACK) and
there is no pre-ping; psycopg prepares the hot statements server-side by itself. A broken
connection surfaces as 503 once and is then discarded by the pool. Elsewhere (SQLite) the
same statements run on the SQLAlchemy engine.
"""

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Protocol

from psycopg import AsyncConnection as PsycopgConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Executable

from app.core.config import Settings

Row = Mapping[str, Any]
# (sql, connection id): called for each statement sent on the driver path (tests count them).
Observer = Callable[[str, int], None]
MAX_CACHED_SHAPES = 2000


class Connection(Protocol):
    dialect_name: str

    async def rows(self, statement: Executable) -> list[Row]: ...
    async def row(self, statement: Executable) -> Row | None: ...
    async def scalar(self, statement: Executable) -> Any: ...
    async def execute(self, statement: Executable) -> None: ...


class EngineConnection:
    """A SQLAlchemy connection behind the `Connection` interface."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        self.dialect_name = connection.dialect.name

    async def rows(self, statement: Executable) -> list[Row]:
        return list((await self.connection.execute(statement)).mappings().all())

    async def row(self, statement: Executable) -> Row | None:
        return (await self.connection.execute(statement)).mappings().first()

    async def scalar(self, statement: Executable) -> Any:
        return (await self.connection.execute(statement)).scalar()

    async def execute(self, statement: Executable) -> None:
        await self.connection.execute(statement)


class StatementCache:
    """SQL text per statement shape; fresh parameter values come from the cache key."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.compiled: dict[Any, Any] = {}

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
        for column in (*compiled.insert_prefetch, *compiled.update_prefetch):
            # Python-side column defaults, which SQLAlchemy's execution context would fill in.
            if params.get(column.key) is None:
                default = column.default if column in compiled.insert_prefetch else column.onupdate
                params[column.key] = default.arg(None) if default.is_callable else default.arg
        sql, processors = compiled.string, compiled._bind_processors
        if compiled.post_compile_params:  # IN lists: one placeholder per value
            expanded = compiled._process_parameters_for_postcompile(params)
            sql, params, processors = expanded.statement, expanded.parameters, expanded.processors
        for name, value in params.items():
            if name in processors and value is not None:
                params[name] = processors[name](value)
        return sql, params


class DriverConnection:
    """A psycopg connection running compiled Core statements."""

    dialect_name = "postgresql"

    def __init__(
        self, connection: PsycopgConnection[Any], cache: StatementCache, observers: list[Observer]
    ) -> None:
        self.connection = connection
        self.cache = cache
        self.observers = observers

    async def _run(self, statement: Executable) -> Any:
        sql, params = self.cache.render(statement)
        for observe in self.observers:
            observe(sql, id(self.connection))
        return await self.connection.execute(sql, params)  # type: ignore[arg-type]

    async def rows(self, statement: Executable) -> list[Row]:
        return await (await self._run(statement)).fetchall()  # type: ignore[no-any-return]

    async def row(self, statement: Executable) -> Row | None:
        return await (await self._run(statement)).fetchone()  # type: ignore[no-any-return]

    async def scalar(self, statement: Executable) -> Any:
        row = await self.row(statement)
        return next(iter(row.values())) if row else None

    async def execute(self, statement: Executable) -> None:
        await self._run(statement)


class Database:
    """`read()` for one-statement autocommit reads, `write()` for a transaction."""

    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self.engine = engine
        self.autocommit_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.pool: AsyncConnectionPool[Any] | None = None
        self.observers: list[Observer] = []
        if engine.dialect.name == "postgresql":
            self.cache = StatementCache(engine.dialect)
            self.pool = AsyncConnectionPool(
                engine.url.set(drivername="postgresql").render_as_string(hide_password=False),
                min_size=1,
                max_size=settings.DB_POOL_SIZE + settings.DB_MAX_OVERFLOW,
                timeout=settings.DB_POOL_TIMEOUT,
                kwargs={
                    "autocommit": True,
                    "row_factory": dict_row,
                    "connect_timeout": settings.DB_CONNECT_TIMEOUT,
                    "options": (
                        f"-c statement_timeout={settings.DB_STATEMENT_TIMEOUT_MS} -c timezone=UTC"
                    ),
                },
                open=False,
            )

    async def open(self) -> None:
        if self.pool is not None:
            await self.pool.open(wait=False)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Connection]:
        if self.pool is not None:
            async with self.pool.connection() as connection:
                yield DriverConnection(connection, self.cache, self.observers)
        else:
            async with self.autocommit_engine.connect() as connection:
                yield EngineConnection(connection)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Connection]:
        if self.pool is not None:
            async with self.pool.connection() as connection:
                try:
                    async with connection.transaction():
                        yield DriverConnection(connection, self.cache, self.observers)
                finally:
                    for observe in self.observers:
                        observe("END", id(connection))
        else:
            async with self.engine.begin() as connection:
                yield EngineConnection(connection)
