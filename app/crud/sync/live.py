"""The worker's live change feed: who listens to which resource, and what wakes them.

On PostgreSQL one connection per worker LISTENs on the `sync` channel; the triggers NOTIFY
the changed table's name at each commit, on every instance. On SQLite (one host) the worker
polls the change clock instead; behind PgBouncer without DATABASE_DIRECT_URL (LISTEN needs a
connection of its own on the server), each channel looks for changes every SSE_POLL_SECONDS.
A wake-up does not carry the changes: each channel reads them from the feed itself, once per
group of subscribers that share a viewer and a position (a hundred anonymous clients: one
query), and queues each page as an event.

A subscriber's queue is bounded: one that falls SSE_QUEUE_EVENTS behind is closed, and its
client resumes with `Last-Event-ID` (the last event it got), so nothing is lost.
"""

import asyncio
import logging
import signal
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

from fastapi.sse import ServerSentEvent
from psycopg import AsyncConnection, OperationalError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col

from app.core.config import Settings
from app.core.database import Database
from app.core.errors import ServiceUnavailable
from app.crud.resource import Viewer
from app.crud.sync.changes import DEFAULT_LIMIT, Changes
from app.crud.sync.schema import NOTIFY_CHANNEL, SyncClock
from app.crud.sync.statements import SnapshotFloor
from app.crud.sync.token import SyncToken

logger = logging.getLogger(__name__)
RECONNECT_SECONDS = 1.0


class Subscriber:
    """One open `/events` stream."""

    def __init__(self, channel: "Channel", viewer: Viewer, token: SyncToken, capacity: int) -> None:
        self.channel = channel
        self.viewer = viewer
        self.start = token  # where its stream began
        self.token = token  # how far its events go
        self.queue: asyncio.Queue[ServerSentEvent | None] = asyncio.Queue(capacity)

    def deliver(self, event: ServerSentEvent) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            logger.info("closing an event stream %d events behind", self.queue.qsize())
            self.close()

    def close(self) -> None:
        """End the stream after the events it has already been sent."""
        if self not in self.channel.subscribers:
            return
        del self.channel.subscribers[self]
        while not self.queue.empty():  # a slow client resumes from its Last-Event-ID
            self.queue.get_nowait()
        self.queue.put_nowait(None)

    async def events(self) -> AsyncIterator[ServerSentEvent]:
        while (event := await self.queue.get()) is not None:
            yield event


class Channel:
    """The subscribers of one resource, and the task that catches them up."""

    def __init__(self, changes: Changes, db: Database, settings: Settings) -> None:
        self.changes = changes
        self.db = db
        self.secret = settings.SECRET_KEY
        self.subscribers: dict[Subscriber, None] = {}  # ordered, for fair turns
        self.task: asyncio.Task[None] | None = None
        self.again = False

    def wake(self) -> None:
        if self.task is not None and not self.task.done():
            self.again = True  # the running pass may have read before this change
            return
        self.task = asyncio.create_task(self.catch_up())

    async def catch_up(self) -> None:
        self.again = True
        while self.again:
            self.again = False
            groups: dict[tuple[Any, bool, SyncToken], list[Subscriber]] = defaultdict(list)
            for subscriber in self.subscribers:
                viewer = subscriber.viewer
                groups[(viewer.id, viewer.is_superuser, subscriber.token)].append(subscriber)
            for members in groups.values():
                try:
                    await self.catch_up_group(members)
                except Exception:  # its clients reconnect, and resume where they were
                    logger.exception("closing %d event streams", len(members))
                    for member in members:
                        member.close()

    async def catch_up_group(self, members: list[Subscriber]) -> None:
        """Read and queue every change after the members' shared position."""
        viewer, token = members[0].viewer, members[0].token
        while True:
            page = await self.changes.read(self.db, viewer, token, DEFAULT_LIMIT)
            token = page.token
            event = None
            if not page.empty:
                data = self.changes.body(page, self.secret).decode()
                event = ServerSentEvent(
                    raw_data=data, id=token.encode(self.secret), event="changes"
                )
            for member in members:
                if member in self.subscribers:
                    member.token = token
                    if event is not None:
                        member.deliver(event)
            if not page.has_more:
                return


class Feed:
    """The worker's channels (one per synced resource) and its one listener."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.channels: dict[str, Channel] = {}  # by table name
        self.listener: asyncio.Task[None] | None = None
        self.closed = False

    def channel(self, table: str, changes: Changes) -> Channel:
        if table not in self.channels:
            self.channels[table] = Channel(changes, self.db, self.settings)
        return self.channels[table]

    @property
    def clients(self) -> int:
        return sum(len(channel.subscribers) for channel in self.channels.values())

    async def now(self, resource: str) -> SyncToken:
        """A token from which only changes to come are read."""
        async with self.db.connect() as connection:
            floor = await connection.scalar(select(SnapshotFloor()), {})
        return SyncToken.since(resource, floor, int(time.time()))

    def subscribe(
        self, table: str, changes: Changes, viewer: Viewer, token: SyncToken
    ) -> Subscriber:
        """A new stream from `token` on; 503 past SSE_MAX_CLIENTS streams in this worker."""
        if self.closed or self.clients >= self.settings.SSE_MAX_CLIENTS:
            raise ServiceUnavailable(
                "This worker serves as many event streams as it may (SSE_MAX_CLIENTS)",
                headers={"Retry-After": "5"},
            )
        channel = self.channel(table, changes)
        subscriber = Subscriber(channel, viewer, token, self.settings.SSE_QUEUE_EVENTS)
        channel.subscribers[subscriber] = None
        if self.listener is None:
            self.listener = asyncio.create_task(self.listen())
        channel.wake()  # replays what happened since the token
        return subscriber

    def wake(self, table: str) -> None:
        channel = self.channels.get(table)
        if channel is not None and channel.subscribers:
            channel.wake()

    def wake_all(self) -> None:
        for table in self.channels:
            self.wake(table)

    async def listen(self) -> None:
        while not self.closed:
            try:
                if self.db.pool is None:
                    await self.poll_clock()
                elif self.db.direct_conninfo:
                    await self.receive_notifications(self.db.direct_conninfo)
                else:
                    await self.poll_channels()
            except (OperationalError, SQLAlchemyError, ServiceUnavailable, OSError) as error:
                logger.warning("change feed listener: %s; reconnecting", error)
            await asyncio.sleep(RECONNECT_SECONDS)

    async def receive_notifications(self, conninfo: str) -> None:
        """PostgreSQL: LISTEN on a connection of its own, outside the pool."""
        connect = AsyncConnection.connect(
            conninfo, autocommit=True, connect_timeout=self.settings.DB_CONNECT_TIMEOUT
        )
        async with await connect as connection:
            await connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
            self.wake_all()  # whatever changed while no one listened
            async for notification in connection.notifies():
                self.wake(notification.payload)

    async def poll_clock(self) -> None:
        """SQLite: one writer, one host; the clock moves with every change."""
        seen = None
        while not self.closed:
            async with self.db.connect() as connection:
                clock = await connection.scalar(select(col(SyncClock.value)), {})
            if clock != seen:
                seen = clock
                self.wake_all()
            await asyncio.sleep(self.settings.SSE_POLL_SECONDS)

    async def poll_channels(self) -> None:
        """Behind a transaction-mode pooler, with no direct connection to LISTEN on."""
        while not self.closed:
            self.wake_all()
            await asyncio.sleep(self.settings.SSE_POLL_SECONDS)

    def close(self) -> None:
        """End every stream (shutdown): each client reconnects, to another worker."""
        self.closed = True
        for channel in self.channels.values():
            for subscriber in list(channel.subscribers):
                subscriber.close()
            if channel.task is not None:
                channel.task.cancel()
        if self.listener is not None:
            self.listener.cancel()


def close_on_exit_signals(feed: Feed) -> None:
    """End the streams as soon as the server is told to stop (SIGTERM, SIGINT).

    uvicorn waits for open responses before it runs the lifespan's shutdown, and a stream
    stays open until the client leaves: without this, every stop would wait out gunicorn's
    graceful timeout. The server's own handler still runs after ours.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(number)
        if not callable(previous):  # not under a server that handles it
            continue

        def close_then(signum: int, frame: Any, previous: Any = previous) -> None:
            loop.call_soon_threadsafe(feed.close)
            previous(signum, frame)

        signal.signal(number, close_then)
