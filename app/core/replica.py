"""A streaming read replica for the generated lists and gets (DATABASE_REPLICA_URL).

Each worker measures the replica every REPLICA_CHECK_SECONDS against the primary: it is usable
while it is in recovery (a standby, not a promoted or mistaken primary) and has replayed the
primary's WAL position of at most REPLICA_MAX_LAG_SECONDS ago. A read that finds the replica
unusable, or fails on it, runs on the primary instead: a replica that stops or lags costs no
request.

Read-your-writes: a client that wrote (a successful POST, PUT, PATCH or DELETE) gets a
`read_primary_until` cookie for REPLICA_STICKY_SECONDS, and its reads go to the primary until
then, whichever instance serves them. The cookie only moves that client's reads to the primary.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

from psycopg import AsyncConnection as PsycopgConnection
from psycopg import OperationalError
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from starlette.requests import HTTPConnection, cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.config import Settings

logger = logging.getLogger(__name__)

COOKIE = "read_primary_until"
SCOPE_KEY = "app.read_primary"  # set by ReadYourWritesMiddleware for the route's reads
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
REPLICA_STATE = "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn() >= %s::pg_lsn"
# Errors after which a read is retried on the primary (it only read: retrying is safe).
REPLICA_ERRORS = (OperationalError, PoolTimeout, OSError)
# The primary's current WAL position (Database.wal_position).
PositionReader = Callable[[], Awaitable[str]]


class Replica:
    """The replica's pool and each worker's view of its health."""

    def __init__(self, settings: Settings, conninfo: str, connect_kwargs: dict[str, Any]) -> None:
        self.settings = settings
        self.pool: AsyncConnectionPool[PsycopgConnection[Any]] = AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=settings.DB_POOL_SIZE,
            timeout=settings.DB_CONNECT_TIMEOUT,  # a short wait, then the primary
            kwargs=connect_kwargs,
            open=False,
        )
        self.usable = False
        self.caught_up_at = 0.0  # monotonic time of the last check that found no lag
        self.monitor: asyncio.Task[None] | None = None

    async def open(self, primary_position: PositionReader) -> None:
        await self.pool.open(wait=False)
        in_recovery = await self.check(primary_position)
        if in_recovery is False:
            logger.warning(
                "DATABASE_REPLICA_URL is not a standby (pg_is_in_recovery() is false): every "
                "read goes to DATABASE_URL"
            )
        self.monitor = asyncio.create_task(self.watch(primary_position))

    async def close(self) -> None:
        if self.monitor is not None:
            self.monitor.cancel()
            await asyncio.gather(self.monitor, return_exceptions=True)
        await self.pool.close()

    async def watch(self, primary_position: PositionReader) -> None:
        while True:
            await asyncio.sleep(self.settings.REPLICA_CHECK_SECONDS)
            await self.check(primary_position)

    async def check(self, primary_position: PositionReader) -> bool | None:
        """Measure the replica: usable or not. Returns whether it is in recovery (None when it
        could not be reached)."""
        try:
            position = await primary_position()
            async with self.pool.connection() as connection:
                cursor = await connection.execute(REPLICA_STATE, (position,))
                in_recovery, caught_up = await cursor.fetchone() or (False, False)
        except REPLICA_ERRORS as error:
            if self.usable:
                logger.warning("read replica unusable: %s", error)
            self.usable = False
            return None
        now = time.monotonic()
        if in_recovery and caught_up:
            self.caught_up_at = now
        lag = now - self.caught_up_at
        self.usable = bool(in_recovery) and lag <= self.settings.REPLICA_MAX_LAG_SECONDS
        return bool(in_recovery)

    def failed(self, error: BaseException) -> None:
        """A read failed on the replica: the next check decides when it is used again."""
        logger.warning("read on the replica failed, retried on the primary: %s", error)
        self.usable = False


def reads_primary(request: HTTPConnection) -> bool:
    """Whether this request's reads go to the primary: its client wrote a moment ago."""
    return bool(request.scope.get(SCOPE_KEY, True))


class ReadYourWritesMiddleware:
    """Marks requests from a client that wrote within REPLICA_STICKY_SECONDS (its cookie), and
    gives every successful write's response that cookie."""

    def __init__(self, app: ASGIApp, seconds: float, secure: bool) -> None:
        self.app = app
        self.seconds = seconds
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope[SCOPE_KEY] = self.until(scope) > time.time()
        if scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                message["headers"] = [*message.get("headers", []), self.cookie()]
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def until(self, scope: Scope) -> float:
        """The client's cookie, no later than a fresh one would say (a forged one gains
        nothing but primary reads for a few seconds)."""
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                with suppress(KeyError, ValueError):
                    sent = float(cookie_parser(value.decode("latin-1"))[COOKIE])
                    return min(sent, time.time() + self.seconds)
        return 0.0

    def cookie(self) -> tuple[bytes, bytes]:
        until = time.time() + self.seconds
        attributes = f"Max-Age={max(1, round(self.seconds))}; Path=/; HttpOnly; SameSite=Lax"
        if self.secure:
            attributes += "; Secure"
        return b"set-cookie", f"{COOKIE}={until:.3f}; {attributes}".encode("latin-1")
