"""A streaming read replica for the generated lists and gets (DATABASE_REPLICA_URL).

Each worker measures the replica every REPLICA_CHECK_SECONDS, on a connection of its own: the
primary's WAL position against what the replica has replayed. The replica is usable while it
is a standby (not promoted, not the primary by mistake) that held everything the primary had
committed at most REPLICA_MAX_LAG_SECONDS ago, judged when each read starts. A read that finds
it unusable, or fails on it, runs on the primary: a replica that stops or lags costs no request.

Read-your-writes: a successful write (POST, PUT, PATCH, DELETE) answers with a
`read_primary` cookie that lives REPLICA_STICKY_SECONDS (at least REPLICA_MAX_LAG_SECONDS), and
that client's reads go to the primary while it has it, whichever instance serves them.
"""

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from psycopg import AsyncConnection as PsycopgConnection
from psycopg import Error as DriverError
from psycopg import OperationalError
from psycopg.errors import UndefinedColumn, UndefinedFunction, UndefinedTable
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.config import Settings

logger = logging.getLogger(__name__)

COOKIE = "read_primary"
SCOPE_KEY = "app.read_primary"  # set by ReadYourWritesMiddleware for the route's reads
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
APPLICATION_NAME = "replica-reads"  # how the replica's pg_stat_activity shows the app
REPLICA_STATE = "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text"
SAMPLES = 10_000  # primary positions waiting to be replayed (at 1 a second: hours of lag)
# A read that raised one of these on the replica runs again on the primary (it only read).
# Not a statement timeout (QueryCanceled): the primary would run the runaway query again.
UNREACHABLE = (OperationalError, OSError)
BUSY = (PoolTimeout,)
NOT_YET_MIGRATED = (UndefinedTable, UndefinedColumn, UndefinedFunction)  # DDL not replayed yet
# The primary's current WAL position (Database.wal_position).
PositionReader = Callable[[], Awaitable[str]]


class Replica:
    """The replica's read pool and this worker's measure of it."""

    def __init__(self, settings: Settings, conninfo: str, connect_kwargs: dict[str, Any]) -> None:
        self.settings = settings
        self.conninfo = conninfo
        self.connect_kwargs = {**connect_kwargs, "application_name": APPLICATION_NAME}
        self.pool = self._new_pool()
        self.probe: PsycopgConnection[Any] | None = None  # the monitor's own connection
        self.reachable = False
        self.in_recovery: bool | None = None  # unknown until the first check
        self.caught_up_at = -math.inf  # monotonic time the replica held all the primary had
        # (monotonic time, the primary's position then), oldest first, not yet replayed
        self.samples: deque[tuple[float, int]] = deque(maxlen=SAMPLES)
        self.monitor: asyncio.Task[None] | None = None
        self._retired: set[asyncio.Task[None]] = set()

    def _new_pool(self) -> AsyncConnectionPool[PsycopgConnection[Any]]:
        return AsyncConnectionPool(
            self.conninfo,
            min_size=1,
            max_size=self.settings.DB_POOL_SIZE,
            timeout=self.settings.DB_CONNECT_TIMEOUT,  # a short wait, then the primary
            kwargs=self.connect_kwargs,
            open=False,
        )

    @property
    def usable(self) -> bool:
        recent = time.monotonic() - self.caught_up_at <= self.settings.REPLICA_MAX_LAG_SECONDS
        return self.reachable and bool(self.in_recovery) and recent

    async def open(self, primary_position: PositionReader) -> None:
        """Start measuring; start-up does not wait for the replica."""
        await self.pool.open(wait=False)
        self.monitor = asyncio.create_task(self.watch(primary_position))

    async def close(self) -> None:
        if self.monitor is not None:
            self.monitor.cancel()
            await asyncio.gather(self.monitor, return_exceptions=True)
        if self.probe is not None:
            await self.probe.close()
        await self.pool.close()
        await asyncio.gather(*self._retired)

    async def watch(self, primary_position: PositionReader) -> None:
        while True:
            try:
                await self.check(primary_position)
            except Exception:  # never end the measuring: an unmeasured replica is not used
                self.reachable = False
                logger.exception("measuring the read replica failed")
            await asyncio.sleep(self.settings.REPLICA_CHECK_SECONDS)

    async def check(self, primary_position: PositionReader) -> None:
        sampled_at = time.monotonic()
        try:
            position = await primary_position()
        except (DriverError, PoolTimeout):  # the primary is down: nothing to measure against
            return
        self.samples.append((sampled_at, wal_number(position)))
        try:
            if self.probe is None or self.probe.broken:
                self.probe = await PsycopgConnection.connect(self.conninfo, **self.connect_kwargs)
                if self.in_recovery is not None and not self.reachable:
                    await self.renew_pool()  # back after an outage: drop the stale pool
            cursor = await self.probe.execute(REPLICA_STATE)
            in_recovery, replayed = await cursor.fetchone() or (False, None)
        except DriverError as error:
            if self.reachable:
                logger.warning("read replica unreachable, reads go to the primary: %s", error)
            self.reachable = False
            return
        if in_recovery is False and self.in_recovery is not False:
            logger.warning(
                "DATABASE_REPLICA_URL is not a standby (pg_is_in_recovery() is false): "
                "reads go to DATABASE_URL"
            )
        self.reachable, self.in_recovery = True, in_recovery
        # The newest sampled position the replica has replayed: it held all the primary had then.
        replayed_number = wal_number(replayed) if replayed else -1
        while self.samples and self.samples[0][1] <= replayed_number:
            self.caught_up_at = max(self.caught_up_at, self.samples.popleft()[0])

    async def renew_pool(self) -> None:
        """A fresh pool: the old one's reconnect attempts back off for minutes."""
        old, self.pool = self.pool, self._new_pool()
        await self.pool.open(wait=False)
        retiring = asyncio.create_task(old.close())
        self._retired.add(retiring)
        retiring.add_done_callback(self._retired.discard)

    def failed(self, error: BaseException) -> None:
        """A read found the replica gone: not used until a check reaches it again."""
        logger.warning("a read failed on the replica and ran on the primary: %s", error)
        self.reachable = False


def wal_number(position: str) -> int:
    """A WAL position (`pg_lsn` text, `16/B374D848`) as a number that orders like it."""
    high, low = position.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def reads_primary(request: HTTPConnection) -> bool:
    """Whether this request's reads go to the primary: no replica, or its client just wrote."""
    return bool(request.scope.get(SCOPE_KEY, True))


class ReadYourWritesMiddleware:
    """Marks requests from a client holding the cookie a write gave it, and gives every
    successful write's response that cookie."""

    def __init__(self, app: ASGIApp, seconds: float, secure: bool) -> None:
        self.app = app
        attributes = f"Max-Age={math.ceil(seconds)}; Path=/; HttpOnly; SameSite=Lax"
        if secure:
            attributes += "; Secure"
        self.set_cookie = (b"set-cookie", f"{COOKIE}=1; {attributes}".encode("latin-1"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope[SCOPE_KEY] = COOKIE in HTTPConnection(scope).cookies
        if scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                message["headers"] = [*message.get("headers", []), self.set_cookie]
            await send(message)

        await self.app(scope, receive, send_with_cookie)
