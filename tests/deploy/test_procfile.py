"""Heroku-style deploy: the Procfile run by a Procfile runner (honcho), as a platform would.

The release phase first (`honcho start release`), then `web` alone: `honcho start` with both
would stop `web` as soon as `release` exits.
"""

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.deploy.conftest import Web
from tests.deploy.services import (
    SUPERUSER_EMAIL,
    SUPERUSER_PASSWORD,
    VENV_BIN,
    Service,
    app_env,
    children,
    free_port,
    listening_sockets,
    login,
    non_loopback_address,
    parent,
    register,
    running,
    unique_email,
    wait_until_ready,
)

pytestmark = pytest.mark.postgres


@contextlib.contextmanager
def honcho_start(process_type: str, env: dict[str, str], logs: Path) -> Iterator[Service]:
    """`honcho start <type>`; honcho puts each process in a session of its own, so those are
    killed here too should honcho itself not stop them."""
    # -e /dev/null: the platform gives the environment, not a developer's .env file.
    argv = [str(VENV_BIN / "honcho"), "start", "--no-colour", "-e", "/dev/null", process_type]
    with running(argv, env, logs, f"honcho-{process_type}-{time.monotonic_ns()}") as honcho:
        try:
            yield honcho
        finally:
            honcho.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                honcho.wait(timeout=30)
            for pid in re.findall(r"started \(pid=(\d+)\)", honcho.stdout()):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(int(pid), signal.SIGKILL)


def test_release_then_web_as_written(create_database: Callable[[], str], tmp_path: Path) -> None:
    port = free_port()
    env = app_env(create_database(), PORT=str(port))

    with honcho_start("release", env, tmp_path) as release:
        assert release.wait(timeout=120) == 0, release.describe()
    assert f"Created superuser {SUPERUSER_EMAIL}" in release.stdout(), release.describe()
    with honcho_start("release", env, tmp_path) as again:
        assert again.wait(timeout=120) == 0, again.describe()
    assert f"Superuser {SUPERUSER_EMAIL} already exists" in again.stdout(), again.describe()

    with honcho_start("web", env, tmp_path) as web:
        wait_until_ready(web, port)
        base_url = f"http://127.0.0.1:{port}"

        email = unique_email("heroku")
        assert register(base_url, email).status_code == 201
        token = login(base_url, email).json()["access_token"]
        me = httpx.get(
            f"{base_url}/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert me.status_code == 200
        assert me.json()["email"] == email
        assert login(base_url, SUPERUSER_EMAIL, SUPERUSER_PASSWORD).status_code == 200

        # A new connection per request, so SO_REUSEPORT spreads them over the workers.
        request_ids = [f"spread-{i}" for i in range(40)]
        for request_id in request_ids:
            response = httpx.get(
                f"{base_url}/health",
                headers={"X-Request-ID": request_id, "Connection": "close"},
                timeout=30,
            )
            assert response.status_code == 200
        served_by = {web.access_line(request_id)["pid"] for request_id in request_ids}
        (master,) = {parent(pid) for pid in served_by}
        assert served_by == children(master), web.describe()
        assert len(served_by) == 2

        web.send_signal(signal.SIGTERM)
        web.wait(timeout=30)
        assert not children(master)
    assert f"Workers listen on 0.0.0.0:{port}" in web.stdout(), web.describe()


def test_web_listens_on_every_address(web: Web) -> None:
    """The platform's router reaches the dyno from outside it (scripts/serve binds loopback)."""
    pids = {web.service.pid, *children(web.service.pid)}
    assert listening_sockets(pids) == {("0.0.0.0", web.port)}
    if (address := non_loopback_address()) is not None:
        assert httpx.get(f"http://{address}:{web.port}/health", timeout=10).status_code == 200
