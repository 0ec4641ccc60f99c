"""A worker killed with SIGKILL is replaced, and the service keeps answering meanwhile."""

import itertools
import os
import signal
from collections.abc import Callable

import httpx
import pytest

from tests.deploy.conftest import Web
from tests.deploy.services import alive, children, wait_for

pytestmark = pytest.mark.postgres


def fresh_get(web: Web, request_id: str) -> int:
    # A new connection each time: a kept-alive one would still point at the killed worker.
    return httpx.get(
        f"{web.base_url}/health",
        headers={"X-Request-ID": request_id, "Connection": "close"},
        timeout=30,
    ).status_code


def test_killed_worker_is_replaced(start_web: Callable[..., Web]) -> None:
    web = start_web()
    master = web.service.pid
    workers = wait_for(lambda: len(children(master)) == 2 and children(master), 30, "2 workers")
    victim = min(workers)

    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: not alive(victim), 10, f"worker {victim} to die")

    statuses = [fresh_get(web, f"during-{i}") for i in range(10)]
    replaced = wait_for(
        lambda: len(now := children(master)) == 2 and victim not in now and now,
        30,
        "a replacement worker",
    )
    (newcomer,) = replaced - workers
    attempts = itertools.count()

    def newcomer_serves() -> bool:
        request_id = f"after-{next(attempts)}"
        statuses.append(fresh_get(web, request_id))
        return web.service.access_line(request_id)["pid"] == newcomer

    wait_for(newcomer_serves, 60, f"the new worker {newcomer} to serve", interval=0)

    assert statuses == [200] * len(statuses), web.service.describe()
    assert "SIGKILL" in web.service.stderr()
    assert web.service.process.poll() is None
