"""VM deploy: scripts/serve migrates a fresh database, then runs gunicorn in its place."""

import signal
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.deploy.services import (
    ROOT,
    SUPERUSER_EMAIL,
    SUPERUSER_PASSWORD,
    app_env,
    children,
    free_port,
    listening_sockets,
    login,
    non_loopback_address,
    running,
    wait_until_ready,
)

pytestmark = pytest.mark.postgres


def test_serve_migrates_then_serves(create_database: Callable[[], str], tmp_path: Path) -> None:
    port = free_port()
    env = app_env(create_database(), PORT=str(port))
    with running([str(ROOT / "scripts" / "serve")], env, tmp_path, "serve") as serve:
        wait_until_ready(serve, port)
        response = login(f"http://127.0.0.1:{port}", SUPERUSER_EMAIL, SUPERUSER_PASSWORD)
        assert response.status_code == 200
        # exec: the script's own process is now the gunicorn master, which systemd signals.
        assert "gunicorn" in Path(f"/proc/{serve.pid}/cmdline").read_text()

        # Behind nginx on the same host: gunicorn listens on loopback only.
        assert listening_sockets({serve.pid, *children(serve.pid)}) == {("127.0.0.1", port)}
        if (address := non_loopback_address()) is not None:
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"http://{address}:{port}/health", timeout=5)

        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=30) == 0, serve.describe()
    assert f"Created superuser {SUPERUSER_EMAIL}" in serve.stdout()
    assert f"Workers listen on 127.0.0.1:{port}" in serve.stderr()
