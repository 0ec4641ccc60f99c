"""The frontend data and auth providers, run by Node (and one page in Chromium) against a live app.

The app is uvicorn in a thread on a free port, over the suite's test database, with
CORS_ORIGINS naming one static page server (`pages.allowed`); a second one (`pages.foreign`)
serves from an origin the app does not know. The npm packages come from
`npm ci --prefix tests/frontend`: without them (or without Node) the tests skip, except under
REQUIRE_BROWSER_TESTS=1 (CI), where they fail.
"""

import asyncio
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from app.core.config import get_settings
from app.main import create_app
from tests.browser.conftest import artifacts, browser, chromium
from tests.conftest import ROOT
from tests.deploy.services import serving_in_thread

__all__ = ["artifacts", "browser", "chromium"]  # shared with tests/browser

FRONTEND = ROOT / "tests" / "frontend"
NODE_MODULES = FRONTEND / "node_modules"
NODE_TIMEOUT = 180  # seconds for one `node --test` run


def require_node_modules() -> None:
    """Skip (fail under REQUIRE_BROWSER_TESTS=1) without Node or the installed packages."""
    missing = []
    if shutil.which("node") is None:
        missing.append("node")
    if not (NODE_MODULES / ".package-lock.json").exists():
        missing.append(str(NODE_MODULES))
    if missing:
        message = f"{' and '.join(missing)} missing: run npm ci --prefix tests/frontend"
        if os.environ.get("REQUIRE_BROWSER_TESTS") == "1":
            pytest.fail(message)
        pytest.skip(message)


def run_in_frontend(argv: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=FRONTEND,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT,
    )


async def node_test(test_file: str, env: Mapping[str, str]) -> str:
    """`node --test <file>` in tests/frontend (off the event loop); fails with its output."""
    argv = ["node", "--test", "--test-reporter=spec", test_file]
    result = await asyncio.to_thread(run_in_frontend, argv, env)
    output = f"--- stdout:\n{result.stdout}\n--- stderr:\n{result.stderr}"
    assert result.returncode == 0, f"node --test {test_file} failed:\n{output}"
    return result.stdout


@dataclass(frozen=True)
class Pages:
    """Two static servers of one directory, on two origins."""

    directory: Path
    allowed: str  # in the app's CORS_ORIGINS
    foreign: str  # not


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class StaticServer:
    server: ThreadingHTTPServer
    thread: threading.Thread

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def static_server(directory: Path) -> StaticServer:
    handler = partial(QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return StaticServer(server, thread)


@pytest.fixture(scope="module")
def pages() -> Iterator[Pages]:
    with tempfile.TemporaryDirectory(prefix="frontend-pages-") as name:
        directory = Path(name)
        allowed, foreign = static_server(directory), static_server(directory)
        try:
            yield Pages(directory, allowed.origin, foreign.origin)
        finally:
            allowed.stop()
            foreign.stop()


@pytest.fixture(scope="module")
def live_url(app: FastAPI, pages: Pages) -> Iterator[str]:
    """The app (CORS_ORIGINS = the allowed page origin) served by uvicorn in a thread.

    Depends on the suite's `app` so the database is migrated first, and its tables are
    emptied after each test by the suite's `clean_tables`.
    """
    settings = get_settings().model_copy(update={"CORS_ORIGINS": [pages.allowed]})
    with serving_in_thread(create_app(settings)) as url:
        yield url
