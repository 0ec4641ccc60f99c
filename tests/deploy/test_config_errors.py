"""A bad configuration stops the web and release processes before anything is served."""

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.deploy.conftest import run_release
from tests.deploy.services import app_env, command, free_port, port_open, running

pytestmark = pytest.mark.postgres


def test_production_without_secret_key_never_serves(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = app_env(database_url, PORT=str(port))
    del env["SECRET_KEY"]

    answered = False
    with running(command("web"), env, tmp_path, "web") as web:
        deadline = time.monotonic() + 30
        while web.process.poll() is None and time.monotonic() < deadline:
            answered = answered or port_open(port)
            time.sleep(0.05)
        returncode = web.wait(timeout=1)

    assert returncode != 0
    assert not answered
    assert "Invalid configuration" in web.stderr(), web.describe()
    assert "SECRET_KEY must be set" in web.stderr()
    assert "ENVIRONMENT=production" in web.stderr()
    assert "Booting worker" not in web.stderr()
    assert "Traceback" not in web.stderr()


def test_release_names_a_bad_value(create_database: Callable[[], str]) -> None:
    result = run_release(app_env(create_database(), ACCESS_TOKEN_EXPIRE_MINUTES="abc"))
    assert result.returncode != 0
    assert "ACCESS_TOKEN_EXPIRE_MINUTES" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_web_names_a_bad_value(database_url: str, tmp_path: Path) -> None:
    env = app_env(database_url, PORT=str(free_port()), LOG_LEVEL="chatty")
    with running(command("web"), env, tmp_path, "web") as web:
        assert web.wait(timeout=30) != 0
    assert "LOG_LEVEL" in web.stderr(), web.describe()
