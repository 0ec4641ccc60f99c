"""The worker's one connection pool, and the two ways requests use it.

PostgreSQL: psycopg's pool is the only pool. The generic layer runs its compiled Core
statements on pooled connections directly (autocommit reads: no BEGIN/ROLLBACK round trips,
no pre-ping; psycopg prepares hot statements server-side by itself, except behind PgBouncer:
DB_PGBOUNCER). The SQLAlchemy engine
behind ORM sessions (auth, users, scripts, the readiness check) borrows from the same pool:
`NullPool` plus `async_creator`, and `close_returns=True` makes its close() a return. So a
worker never holds more than DB_POOL_SIZE connections. SQLite has no pool to share: the
same statements run on the SQLAlchemy engine.

Outages: a broken connection surfaces as 503 once. From then on, until one direct connection
succeeds, requests do not queue on the pool (whose reconnect attempts back off for minutes)
but share one connection attempt, so they answer 503 within DB_CONNECT_TIMEOUT; when it
succeeds, the pool is replaced by a fresh one, discarding every stale connection at once.
Waiting for a busy pool (up to DB_POOL_TIMEOUT) stays a wait, not an error.

Generated lists and gets go through `read()`, which uses the read replica's pool when one is
configured and usable (app/core/replica.py).
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any, TypeVar

from psycopg import AsyncConnection as PsycopgConnection
from psycopg import OperationalError
from psycopg.errors import QueryCanceled
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.core.config import Settings
from app.core.connections import (
    Connection,
    DriverConnection,
    EngineConnection,
    Observer,
    PooledConnection,
)
from app.core.db import create_sessionmaker, create_sqlite_engine
from app.core.replica import BUSY, NOT_YET_MIGRATED, UNREACHABLE, Replica
from app.core.statements import StatementCache

logger = logging.getLogger(__name__)
T = TypeVar("T")
ROLE_SETTINGS = (
    "SELECT current_setting('TimeZone'), "
    "(SELECT setting::int FROM pg_settings WHERE name = 'statement_timeout')"
)
UTC_NAMES = {"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Zulu", "Etc/Zulu", "Universal", "GMT"}


def conninfo(url: str) -> str:
    """A SQLAlchemy URL as psycopg's connection string."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def connect_kwargs(settings: Settings) -> dict[str, Any]:
    """psycopg's connection arguments. Behind PgBouncer in transaction mode, consecutive
    transactions run on different server connections: no prepared statements (psycopg prepares
    a statement run 5 times) and no session settings (PgBouncer 1.18 refuses `options`; the
    role's settings apply, docs/scaling.md)."""
    common: dict[str, Any] = {"autocommit": True, "connect_timeout": settings.DB_CONNECT_TIMEOUT}
    if settings.DB_PGBOUNCER:
        return {**common, "prepare_threshold": None}
    timeout = settings.DB_STATEMENT_TIMEOUT_MS
    return {**common, "options": f"-c statement_timeout={timeout} -c timezone=UTC"}


class Database:
    """`connect()` runs each statement on its own (autocommit), `transaction()` several as one;
    `engine` and `sessionmaker` serve ORM sessions, from the same pool."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.observers: list[Observer] = []
        self.pool: AsyncConnectionPool[PooledConnection] | None = None
        self.replica: Replica | None = None
        if settings.is_sqlite:
            self.engine = create_sqlite_engine(settings)
        else:
            self.conninfo = conninfo(settings.DATABASE_URL)
            self.direct_conninfo = conninfo(settings.direct_url) if settings.direct_url else None
            self.pool_size = settings.DB_POOL_SIZE
            self.pool_timeout = settings.DB_POOL_TIMEOUT
            self.connect_kwargs = connect_kwargs(settings)
            if settings.DATABASE_REPLICA_URL:
                replica_conninfo = conninfo(settings.DATABASE_REPLICA_URL)
                self.replica = Replica(settings, replica_conninfo, self.connect_kwargs)
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
            if self.settings.DB_PGBOUNCER:
                await self._check_pgbouncer_setup()
            if self.replica is not None:
                await self.replica.open(self.wal_position)

    async def _check_pgbouncer_setup(self) -> None:
        """Say what PgBouncer mode lacks: a direct connection, the role's settings."""
        if not self.settings.DATABASE_DIRECT_URL:
            logger.warning(
                "DB_PGBOUNCER without DATABASE_DIRECT_URL: the live feed polls every "
                "SSE_POLL_SECONDS instead of listening (LISTEN needs a direct connection)"
            )
        try:
            connection = await PsycopgConnection.connect(self.conninfo, **self.connect_kwargs)
            async with connection:
                cursor = await connection.execute(ROLE_SETTINGS)
                timezone, timeout_ms = await cursor.fetchone() or ("", 0)
        except OperationalError as error:
            logger.warning("could not read the database role's settings: %s", error)
            return
        wanted_ms = self.settings.DB_STATEMENT_TIMEOUT_MS
        if timezone not in UTC_NAMES or timeout_ms != wanted_ms:
            logger.warning(
                "DB_PGBOUNCER: the role has timezone=%s, statement_timeout=%sms; the app "
                "expects UTC and DB_STATEMENT_TIMEOUT_MS=%s. Run once: ALTER ROLE CURRENT_USER "
                "SET timezone = 'UTC'; ALTER ROLE CURRENT_USER SET statement_timeout = %s",
                timezone,
                timeout_ms,
                wanted_ms,
                wanted_ms,
            )

    async def close(self) -> None:
        if self.replica is not None:
            await self.replica.close()
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

    async def read(self, work: Callable[[Connection], Awaitable[T]], *, fresh: bool) -> T:
        """Reading work: on the replica when one is usable and `fresh` is not asked for, else
        (and when the replica fails it) on the primary."""
        replica = self.replica
        if replica is not None and replica.usable and not fresh:
            try:
                async with replica.pool.connection() as connection:
                    return await work(DriverConnection(connection, self.cache, self.observers))
            except QueryCanceled:
                raise  # a statement timeout: the primary would run the runaway query again
            except UNREACHABLE as error:
                replica.failed(error)
            except (*BUSY, *NOT_YET_MIGRATED):
                pass  # its pool is full, or it has not replayed a migration yet
        async with self.connect() as connection:
            return await work(connection)

    async def wal_position(self) -> str:
        """The primary's current WAL position (the replica's lag is measured against it)."""
        connection = await self.acquire()
        try:
            cursor = await connection.execute("SELECT pg_current_wal_lsn()::text")
            row = await cursor.fetchone()
        finally:
            await self.release(connection)
        assert row is not None
        return str(row[0])

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
