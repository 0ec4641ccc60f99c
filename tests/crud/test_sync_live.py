"""`GET /<plural>/events`: the live feed, served by uvicorn (streams need a real server), on
both databases (PostgreSQL: LISTEN/NOTIFY; SQLite: the worker polls the clock)."""

import asyncio
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from app.core.config import get_settings
from app.main import create_app
from tests.crud.formats import assert_problem
from tests.deploy.services import serving_in_thread
from tests.factories import DEFAULT_PASSWORD
from tests.sse import EventStream, open_events

EVENTS = "/api/v1/posts/events"
FAST_POLL = {"SSE_POLL_SECONDS": 0.05}


@contextmanager
def served(**settings: Any) -> Iterator[tuple[FastAPI, str]]:
    application = create_app(get_settings().model_copy(update={**FAST_POLL, **settings}))
    with serving_in_thread(application) as url:
        yield application, url


async def changes_until(
    events: EventStream, done: Callable[[list[dict[str, Any]]], bool], within: float = 10
) -> list[dict[str, Any]]:
    """The `changes` events' bodies (with their ids) until `done(bodies)` holds."""
    bodies: list[dict[str, Any]] = []
    deadline = time.monotonic() + within
    while not done(bodies):
        event = await events.next(max(deadline - time.monotonic(), 0.01))
        assert event is not None and event.event == "changes", (event, events.error)
        bodies.append(event.json() | {"id": event.id})
    return bodies


async def login(http: httpx.AsyncClient, email: str) -> dict[str, str]:
    body = {"email": email, "password": DEFAULT_PASSWORD, "full_name": "Streamer"}
    assert (await http.post("/api/v1/auth/register", json=body)).status_code == 201
    form = {"username": email, "password": DEFAULT_PASSWORD}
    token = (await http.post("/api/v1/auth/login", data=form)).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


async def create_post(http: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> int:
    response = await http.post("/api/v1/posts", json={"title": "t", **fields}, headers=headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def ids_in(bodies: list[dict[str, Any]]) -> set[int]:
    return {item["data"]["id"] for body in bodies for item in body["items"]}


async def test_a_write_reaches_an_open_stream() -> None:
    with served() as (_, url):
        async with httpx.AsyncClient(base_url=url) as http:
            owner = await login(http, "live1@example.com")
            async with open_events(http, EVENTS) as events:
                await events.ready()
                post_id = await create_post(http, owner)
                [body] = await changes_until(events, lambda bodies: post_id in ids_in(bodies))
                patched = await http.patch(
                    f"/api/v1/posts/{post_id}", json={"published": False}, headers=owner
                )
                assert patched.status_code == 200
                [gone] = await changes_until(events, lambda bodies: bool(bodies))
                assert gone["deleted"] == [post_id]  # a draft: gone for anonymous streams
            # An event's id is a sync token: nothing before it is missing after it.
            after = await http.get("/api/v1/posts/changes", params={"since": gone["id"]})
            assert after.json()["items"] == [] and after.json()["deleted"] in ([], [post_id])
            assert body["items"][0]["etag"].startswith('"1.')


async def test_last_event_id_resumes_with_no_gap() -> None:
    with served() as (_, url):
        async with httpx.AsyncClient(base_url=url) as http:
            owner = await login(http, "live2@example.com")
            async with open_events(http, EVENTS) as events:
                last_seen = (await events.ready()).id
            written = {await create_post(http, owner) for _ in range(3)}
            headers = {"Last-Event-ID": last_seen}
            async with open_events(http, EVENTS, headers) as events:
                assert (await events.ready()).id == last_seen  # where it resumes
                bodies = await changes_until(events, lambda bodies: ids_in(bodies) >= written)
            assert ids_in(bodies) == written
            bad = await http.get(EVENTS, headers={"Last-Event-ID": "forged"})
            body = assert_problem(bad, 422, "invalid-sync-token")
            assert body["errors"][0]["loc"] == ["header", "Last-Event-ID"]


async def test_a_stream_ticket_opens_the_callers_stream() -> None:
    with served() as (_, url):
        async with httpx.AsyncClient(base_url=url) as http:
            owner = await login(http, "live3@example.com")
            ticket = (await http.post("/api/v1/auth/stream-ticket", headers=owner)).json()
            assert ticket["expires_in"] == get_settings().STREAM_TICKET_SECONDS
            params = {"ticket": ticket["ticket"]}
            async with open_events(http, EVENTS, params=params) as events:
                await events.ready()
                draft = await create_post(http, owner, published=False)
                bodies = await changes_until(events, lambda bodies: draft in ids_in(bodies))
                assert bodies[-1]["items"][0]["data"]["published"] is False
            as_bearer = {"Authorization": f"Bearer {ticket['ticket']}"}
            assert_problem(await http.get("/api/v1/users/me", headers=as_bearer), 401)
            access_token = owner["Authorization"].removeprefix("Bearer ")
            for wrong in (access_token, "not-a-ticket"):
                refused = await http.get(EVENTS, params={"ticket": wrong})
                assert_problem(refused, 401, "invalid-token")
            assert_problem(await http.post("/api/v1/auth/stream-ticket"), 401)


async def test_past_sse_max_clients_a_stream_is_refused_with_retry_after() -> None:
    with served(SSE_MAX_CLIENTS=1) as (_, url):
        async with httpx.AsyncClient(base_url=url) as http, open_events(http, EVENTS) as first:
            await first.ready()
            refused = await http.get(EVENTS)
            assert_problem(refused, 503)
            assert refused.headers["Retry-After"] == "5"


async def test_a_client_that_reads_nothing_is_disconnected() -> None:
    """Its events stop at a bounded queue, then its connection is closed: the server does not
    hold every change for a client that never reads them."""
    settings = {"SSE_QUEUE_EVENTS": 2, "SSE_SEND_TIMEOUT": 1.0}
    with served(**settings) as (application, url):
        port = int(url.rsplit(":", 1)[1])
        async with httpx.AsyncClient(base_url=url) as http:
            owner = await login(http, "live4@example.com")
            with socket.socket() as stalled:
                stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                stalled.connect(("127.0.0.1", port))
                stalled.sendall(f"GET {EVENTS} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
                feed = application.state.feed
                deadline = time.monotonic() + 10
                while feed.clients == 0:
                    assert time.monotonic() < deadline, "the stream never opened"
                    await asyncio.sleep(0.05)
                # Far more than the socket buffers (loopback's grow to 4 MB) and the queue hold:
                # 12 events of 0.9 MB.
                batch = [{"title": "t", "content": "x" * 10_000}] * 90
                for _ in range(12):
                    response = await http.post("/api/v1/posts/batch", json=batch, headers=owner)
                    assert response.status_code == 201, response.text
                    await asyncio.sleep(0.1)
                while feed.clients:
                    assert time.monotonic() < deadline + 20, "the stalled stream was kept"
                    await asyncio.sleep(0.05)
                # The server closed the connection: reading now ends (EOF) rather than blocks.
                stalled.settimeout(10)
                received = 0
                while chunk := stalled.recv(65536):
                    received += len(chunk)
                assert 0 < received < 12 * 90 * 10_000
            # The server still serves streams.
            async with open_events(http, EVENTS) as events:
                await events.ready()
