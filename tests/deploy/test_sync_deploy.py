"""The live change feed (`GET /api/v1/<plural>/events`) as deployed: the Procfile's gunicorn,
the shipped nginx.conf in front of it, SIGTERM, and the per-worker stream limit.

The stream client is tests/sse.py.
"""

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.crud.formats import assert_problem
from tests.deploy.conftest import Web, released
from tests.deploy.services import (
    app_env,
    command,
    free_port,
    port_open,
    requires_nginx,
    running,
    running_nginx,
    wait_for,
    wait_until_ready,
)
from tests.sse import EVENT_STREAM, open_events, sign_up

EVENTS = "/api/v1/posts/events"
POSTS = "/api/v1/posts"
# Connect quickly; a stream may be idle up to the 15 s heartbeat, so reads wait longer.
TIMEOUT = httpx.Timeout(30, connect=5)
SHUTDOWN_SECONDS = 10  # well under gunicorn's graceful_timeout (25 s)


# --- Fixtures: a fresh database for this module, gunicorn processes of each test's own ------


@pytest.fixture(scope="module")
def sync_database_url(create_database: Callable[[], str]) -> str:
    """A database of this module's own, migrated by the Procfile's release command."""
    return released(create_database())


@pytest.fixture(
    params=[pytest.param("postgresql", marks=pytest.mark.postgres), pytest.param("sqlite")]
)
def any_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The module's PostgreSQL database, or a fresh SQLite file (single host)."""
    if request.param == "postgresql":
        url: str = request.getfixturevalue("sync_database_url")
        return url
    return released(f"sqlite+aiosqlite:///{tmp_path}/app.db")


@pytest.fixture
def start_web(tmp_path: Path) -> Iterator[Callable[..., Web]]:
    """The Procfile's web command on a database; stopped (or killed) after the test."""
    with contextlib.ExitStack() as stack:

        def start(database_url: str, **env_overrides: str) -> Web:
            port = free_port()
            env = app_env(database_url, PORT=str(port), HOST="127.0.0.1", **env_overrides)
            service = stack.enter_context(running(command("web"), env, tmp_path, f"web-{port}"))
            wait_until_ready(service, port)
            return Web(service, port)

        yield start


# --- Tests -------------------------------------------------------------------------------


@pytest.mark.postgres
@requires_nginx
async def test_events_pass_through_nginx_at_once(
    sync_database_url: str, start_web: Callable[..., Web]
) -> None:
    """An event reaches the client through the shipped nginx.conf within seconds.

    End to end only: the app's own `X-Accel-Buffering: no` also turns nginx's buffering off,
    so this passes without the config's events location too (tried by hand).
    """
    web = start_web(sync_database_url)
    with running_nginx(web.port) as (_nginx, port):
        edge = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            _user_id, headers = await sign_up(http, edge, "edge")
            # As a browser asks: nginx may gzip JSON, and must not hold back the stream.
            accept = {"Accept": EVENT_STREAM, "Accept-Encoding": "gzip"}
            async with open_events(http, f"{edge}{EVENTS}", headers=accept) as stream:
                assert stream.response.headers["content-type"].startswith(EVENT_STREAM)
                assert "content-encoding" not in stream.response.headers
                await stream.ready(within=5)

                sent = time.monotonic()
                created = await http.post(f"{edge}{POSTS}", json={"title": "Live"}, headers=headers)
                assert created.status_code == 201, created.text
                post_id = created.json()["id"]
                event = await stream.next(within=5)
                delay = time.monotonic() - sent

    assert event is not None, f"the stream ended ({stream.error!r})\n{web.service.describe()}"
    assert event.event == "changes", event
    body = event.json()
    assert [item["data"]["id"] for item in body["items"]] == [post_id]
    assert body["items"][0]["data"]["title"] == "Live"
    assert body["deleted"] == [] and body["has_more"] is False
    assert event.id == body["token"]
    assert delay < 5, delay


async def test_sigterm_ends_open_streams_cleanly_and_quickly(
    any_database_url: str, start_web: Callable[..., Web]
) -> None:
    web = start_web(any_database_url)
    async with (
        httpx.AsyncClient(timeout=TIMEOUT) as http,
        open_events(http, f"{web.base_url}{EVENTS}") as stream,
    ):
        await stream.ready()
        assert stream.response.headers.get("transfer-encoding") == "chunked"
        signalled = time.monotonic()
        web.service.send_signal(signal.SIGTERM)
        try:
            end = await stream.next(within=SHUTDOWN_SECONDS)
        except AssertionError:
            raise AssertionError(
                f"the stream was still open {SHUTDOWN_SECONDS} s after SIGTERM "
                f"({stream.queue.qsize()} events queued)\n{web.service.describe()}"
            ) from None
        stream_ended = time.monotonic() - signalled
        exit_code = await asyncio.to_thread(web.service.wait, SHUTDOWN_SECONDS)
        stopped = time.monotonic() - signalled

    assert end is None, f"an event instead of the end of the stream: {end}"
    # The chunked body was terminated: no "peer closed connection" (RemoteProtocolError).
    assert stream.error is None, repr(stream.error)
    assert exit_code == 0, web.service.describe()
    assert stopped < SHUTDOWN_SECONDS, (stream_ended, stopped)
    wait_for(lambda: not port_open(web.port), 5, "the port to close")
    assert "Traceback" not in web.service.stderr(), web.service.describe()
    assert "was sent SIGKILL" not in web.service.stderr(), web.service.describe()


@pytest.mark.postgres
async def test_streams_past_sse_max_clients_get_503(
    sync_database_url: str, start_web: Callable[..., Web]
) -> None:
    web = start_web(sync_database_url, SSE_MAX_CLIENTS="1", WEB_CONCURRENCY="1")
    url = f"{web.base_url}{EVENTS}"
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        async with open_events(http, url) as first:
            await first.ready()
            refused = await http.get(url)
            assert_problem(refused, 503, "service-unavailable")
            assert int(refused.headers["retry-after"]) >= 1
            # The first stream is still served.
            assert not first.ended

        # Its place is free again once the client has gone.
        async def reopened() -> None:
            async with open_events(http, url) as again:
                await again.ready()

        deadline = time.monotonic() + 10
        while True:
            try:
                await reopened()
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
