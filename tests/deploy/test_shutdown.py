"""Graceful shutdown: SIGTERM lets in-flight requests finish, then gunicorn exits 0."""

import contextlib
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.deploy.conftest import Web
from tests.deploy.services import (
    accepted_connections,
    port_open,
    register,
    unique_email,
    wait_for,
)

pytestmark = pytest.mark.postgres

IN_FLIGHT = 4


def _tcp_rows(port: int) -> list[tuple[int, int, int, int, int]]:
    """(local port, remote port, send queue, receive queue, inode) of established sockets
    with `port` at either end."""
    rows = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local = int(fields[1].rsplit(":", 1)[1], 16)
                remote = int(fields[2].rsplit(":", 1)[1], 16)
                send_queue, receive_queue = (int(part, 16) for part in fields[4].split(":"))
                if fields[3] == "01" and port in (local, remote):
                    rows.append((local, remote, send_queue, receive_queue, int(fields[9])))
    return rows


def requests_read(port: int, count: int) -> bool:
    """`count` connections are accepted and the server has read every byte sent on them.

    The clients' send queues are empty (the server's kernel has everything) and so are the
    accepted sockets' receive queues (a worker has read it): uvicorn parses what it reads at
    once, so each request is then in the worker's hands, not in a socket buffer that a
    shutting-down server would drop with the connection.
    """
    rows = _tcp_rows(port)
    accepted = [row for row in rows if row[0] == port and row[4] != 0]
    sending = [row for row in rows if row[1] == port]
    return (
        len(accepted) == count
        and all(receive_queue == 0 for _, _, _, receive_queue, _ in accepted)
        and all(send_queue == 0 for _, _, send_queue, _, _ in sending)
    )


def test_sigterm_finishes_in_flight_requests(start_web: Callable[..., Web]) -> None:
    # Cost 14: each registration hashes for a second or more, so all are in flight at SIGTERM.
    web = start_web(BCRYPT_ROUNDS="14")

    def timed_register(index: int) -> tuple[int, float]:
        response = register(web.base_url, unique_email(f"graceful{index}"))
        return response.status_code, time.monotonic()

    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        futures = [pool.submit(timed_register, index) for index in range(IN_FLIGHT)]
        wait_for(lambda: accepted_connections(web.port) == IN_FLIGHT, 30, "accepted requests")
        wait_for(lambda: requests_read(web.port, IN_FLIGHT), 30, "the workers to read them")
        assert not any(future.done() for future in futures), "answered before SIGTERM"
        signalled = time.monotonic()
        web.service.send_signal(signal.SIGTERM)
        results = [future.result(timeout=60) for future in futures]

    assert [status for status, _ in results] == [201] * IN_FLIGHT, web.service.describe()
    assert all(finished > signalled for _, finished in results), "not in flight at SIGTERM"
    assert web.service.wait(timeout=30) == 0, web.service.describe()
    assert time.monotonic() - signalled < 25 + 5  # within graceful_timeout
    wait_for(lambda: not port_open(web.port), 5, "the port to close")
