"""A Server-Sent Events client for the live-feed tests: the stream parsed as EventSource does,
read by a task of its own so that waits time out; and a sign-up through the HTTP API."""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from tests.deploy.services import PASSWORD, unique_email

EVENT_STREAM = "text/event-stream"


@dataclass(frozen=True)
class Event:
    event: str
    id: str | None
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


async def parse_events(lines: AsyncIterator[str]) -> AsyncIterator[Event]:
    """Events from a `text/event-stream`'s lines: `field: value` lines, a blank line ends an
    event, a line starting with `:` is a comment (the heartbeat)."""
    fields: dict[str, str] = {}
    data: list[str] = []
    async for line in lines:
        if not line:
            if fields or data:
                yield Event(fields.get("event", "message"), fields.get("id"), "\n".join(data))
            fields, data = {}, []
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            else:
                fields[name] = value


class EventStream:
    """An open event stream, read by a task of its own so that waits can time out.

    `next()` returns the next event, or None once the response has ended: `error` is then None
    when it ended cleanly (the chunked body terminated), else what reading it raised.
    """

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self.error: Exception | None = None
        self.ended = False
        self.last_id: str | None = None
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for event in parse_events(self.response.aiter_lines()):
                self.queue.put_nowait(event)
        except Exception as error:  # the test asserts on it
            self.error = error
        finally:
            self.ended = True
            self.queue.put_nowait(None)

    async def next(self, within: float) -> Event | None:
        try:
            event = await asyncio.wait_for(self.queue.get(), within)
        except TimeoutError:
            raise AssertionError(f"no event within {within:.1f} s") from None
        if event is not None and event.id is not None:
            self.last_id = event.id
        return event

    async def ready(self, within: float = 10) -> Event:
        """The first event: `ready`, whose data names the token its id carries."""
        event = await self.next(within)
        assert event is not None, f"the stream ended before `ready` ({self.error!r})"
        assert event.event == "ready", event
        assert event.id and event.json() == {"token": event.id}, event
        return event

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.response.aclose()


@contextlib.asynccontextmanager
async def open_events(
    http: httpx.AsyncClient,
    url: str,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> AsyncIterator[EventStream]:
    """GET an event stream (asserting 200 and its media type); closed when the block ends."""
    request = http.build_request("GET", url, headers=headers, params=params)
    response = await http.send(request, stream=True)
    try:
        if response.status_code != 200:
            await response.aread()
            raise AssertionError(f"{url}: {response.status_code} {response.text}")
        assert response.headers["content-type"].startswith(EVENT_STREAM), response.headers
        stream = EventStream(response)
        try:
            yield stream
        finally:
            await stream.close()
    finally:
        await response.aclose()


async def sign_up(
    http: httpx.AsyncClient, base_url: str, prefix: str
) -> tuple[int, dict[str, str]]:
    """A new user's id and bearer header, through the API at base_url."""
    email = unique_email(prefix)
    body = {"email": email, "password": PASSWORD, "full_name": prefix.title()}
    registered = await http.post(f"{base_url}/api/v1/auth/register", json=body)
    assert registered.status_code == 201, registered.text
    login = await http.post(
        f"{base_url}/api/v1/auth/login", data={"username": email, "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    return registered.json()["id"], {"Authorization": f"Bearer {login.json()['access_token']}"}
