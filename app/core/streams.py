"""Event streams whose client stopped reading are closed, not kept forever.

A write to a client that reads nothing blocks once the socket buffers are full, and a stream
has no end to reach: it would hold its connection, and whatever it was about to send, for as
long as the client's TCP stack answers. A `text/event-stream` response write that blocks
longer than the timeout abandons the response; the server then closes the connection.
"""

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)
EVENT_STREAM = b"text/event-stream"
STREAM_PATH_SUFFIX = "/events"


class StalledClient(BaseException):
    """Raised through the app like a cancellation (a BaseException): the error handlers,
    which only see Exceptions, do not log it as a failure of the app."""


class StreamWriteTimeoutMiddleware:
    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The generated streams' paths end so; other requests pass untouched (no wrapper).
        if scope["type"] != "http" or not scope["path"].endswith(STREAM_PATH_SUFFIX):
            await self.app(scope, receive, send)
            return
        streaming = False

        async def bounded_send(message: Message) -> None:
            nonlocal streaming
            if message["type"] == "http.response.start":
                streaming = any(
                    name == b"content-type" and value.startswith(EVENT_STREAM)
                    for name, value in message.get("headers", ())
                )
            if not streaming:
                await send(message)
                return
            try:
                await asyncio.wait_for(send(message), self.seconds)
            except TimeoutError:
                raise StalledClient() from None

        try:
            await self.app(scope, receive, bounded_send)
        except* StalledClient:
            logger.info("closed an event stream: its client read nothing for %s s", self.seconds)
