"""Graceful shutdown: SIGTERM lets in-flight requests finish, then gunicorn exits 0."""

import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

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


def test_sigterm_finishes_in_flight_requests(start_web: Callable[..., Web]) -> None:
    # Cost 14: each registration hashes for a second or more, so all are in flight at SIGTERM.
    web = start_web(BCRYPT_ROUNDS="14")

    def timed_register(index: int) -> tuple[int, float]:
        response = register(web.base_url, unique_email(f"graceful{index}"))
        return response.status_code, time.monotonic()

    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        futures = [pool.submit(timed_register, index) for index in range(IN_FLIGHT)]
        wait_for(lambda: accepted_connections(web.port) == IN_FLIGHT, 30, "accepted requests")
        time.sleep(0.2)  # let the workers read them
        signalled = time.monotonic()
        web.service.send_signal(signal.SIGTERM)
        results = [future.result(timeout=60) for future in futures]

    assert [status for status, _ in results] == [201] * IN_FLIGHT, web.service.describe()
    assert all(finished > signalled for _, finished in results), "not in flight at SIGTERM"
    assert web.service.wait(timeout=30) == 0, web.service.describe()
    assert time.monotonic() - signalled < 25 + 5  # within graceful_timeout
    wait_for(lambda: not port_open(web.port), 5, "the port to close")
