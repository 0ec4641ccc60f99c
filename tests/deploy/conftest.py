"""Deploy tests run the shipped Procfile, gunicorn config and nginx.conf as real processes.

They need PostgreSQL (each run creates its own databases on the TEST_DATABASE_URL server and
drops them) and send traffic only to this machine: 127.0.0.0/8, and its own non-loopback
address, if it has one, to check what listens there.
"""

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.deploy.services import (
    ROOT,
    Service,
    app_env,
    command,
    free_port,
    running,
    wait_until_ready,
)


@pytest.fixture(autouse=True)
def clean_tables() -> None:
    """These tests use databases of their own, not the suite's test database."""


@pytest.fixture(scope="session")
def create_database() -> Iterator[Callable[[], str]]:
    """Make fresh, empty databases; returns their URLs as a Heroku-style platform gives them."""
    server = make_url(os.environ["TEST_DATABASE_URL"]).set(drivername="postgresql")
    admin = server.set(database="postgres").render_as_string(hide_password=False)
    created: list[str] = []

    def create() -> str:
        name = f"deploy_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        url = server.set(drivername="postgres", database=name)
        return url.render_as_string(hide_password=False)

    yield create
    with psycopg.connect(admin, autocommit=True) as connection:
        for name in created:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_release(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command("release"), cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="session")
def database_url(create_database: Callable[[], str]) -> str:
    """A database the Procfile's release command has migrated (with the first superuser)."""
    return released(create_database())


def released(url: str) -> str:
    """`url`, once the Procfile's release command has migrated it."""
    result = run_release(app_env(url))
    assert result.returncode == 0, result.stdout + result.stderr
    return url


@pytest.fixture(scope="session")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("deploy-logs")


@dataclass
class Web:
    service: Service
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="session")
def web(database_url: str, logs: Path) -> Iterator[Web]:
    """The Procfile's web command, shared by the tests that only send it requests."""
    port = free_port()
    env = app_env(database_url, PORT=str(port))
    with running(command("web"), env, logs, "shared-web") as service:
        wait_until_ready(service, port)
        yield Web(service, port)


@pytest.fixture
def start_web(database_url: str, logs: Path) -> Iterator[Callable[..., Web]]:
    """Web processes of the test's own (for tests that stop or kill them), stopped after it."""
    with ExitStack() as stack:

        def start(**env_overrides: str) -> Web:
            port = free_port()
            env = app_env(database_url, PORT=str(port), **env_overrides)
            service = stack.enter_context(running(command("web"), env, logs, f"web-{port}"))
            wait_until_ready(service, port)
            return Web(service, port)

        yield start
