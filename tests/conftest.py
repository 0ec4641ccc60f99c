"""Tests talk HTTP to the app (lifespan on) over a real, migrated database.

PostgreSQL when TEST_DATABASE_URL is set, else SQLite in a temporary file. Every test
starts with empty tables.
"""

import os
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, ExitStack
from pathlib import Path
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

ROOT = Path(__file__).resolve().parents[1]
_TEST_URL = os.environ.get("TEST_DATABASE_URL") or (
    f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='crud-tests-')}/test.db"
)
_SESSION_SERVICES = ExitStack()
if os.environ.get("TEST_PGBOUNCER") == "1":
    # The suite through a transaction-mode PgBouncer, as behind a managed plan's pooler; the
    # migrations and the live feed's LISTEN go to the server itself (DATABASE_DIRECT_URL).
    from tests.pgbouncer import pgbouncer

    if not os.environ.get("TEST_DATABASE_URL"):
        raise pytest.UsageError("TEST_PGBOUNCER=1 needs TEST_DATABASE_URL")
    _bouncer = _SESSION_SERVICES.enter_context(pgbouncer(_TEST_URL))
    os.environ.update(DB_PGBOUNCER="true", DATABASE_DIRECT_URL=_TEST_URL)
    _TEST_URL = _bouncer.url(make_url(_TEST_URL).database or "postgres")
os.environ.update(
    DATABASE_URL=_TEST_URL,
    ENVIRONMENT="test",
    SECRET_KEY="test-secret-key-that-is-long-enough-0123456789",
    BCRYPT_ROUNDS="4",
    LOG_LEVEL="WARNING",
    # Throttling tests build their own app with low limits; the rest must not trip them.
    LOGIN_MAX_FAILURES="1000",
    REGISTER_MAX_PER_WINDOW="1000000",  # sign-ups come from one address in tests
)

from app.core.config import get_settings  # noqa: E402
from app.main import create_app  # noqa: E402
from tests.factories import UserFactory  # noqa: E402

IS_POSTGRES = not get_settings().is_sqlite
Serve = Callable[[FastAPI], Awaitable[AsyncClient]]


def pytest_unconfigure() -> None:
    _SESSION_SERVICES.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if IS_POSTGRES:
        return
    skip = pytest.mark.skip(reason="PostgreSQL only (TEST_DATABASE_URL is not set)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


def run_alembic(*args: str, database_url: str = _TEST_URL) -> subprocess.CompletedProcess[str]:
    """Alembic's async env.py calls asyncio.run, so it runs in its own process."""
    env = {**os.environ, "DATABASE_URL": database_url}
    if database_url != _TEST_URL:  # another database: not the one behind the test PgBouncer
        env.pop("DATABASE_DIRECT_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )


@pytest.fixture(scope="session")
async def app() -> AsyncIterator[FastAPI]:
    run_alembic("upgrade", "head")
    application = create_app()
    async with LifespanManager(application):
        yield application


@pytest.fixture(autouse=True)
async def clean_tables(app: FastAPI) -> AsyncIterator[None]:
    yield
    tables = [table.name for table in SQLModel.metadata.sorted_tables]
    async with app.state.engine.begin() as connection:
        if IS_POSTGRES:
            quoted = ", ".join(f'"{name}"' for name in tables)
            await connection.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
        else:
            for name in reversed(tables):
                await connection.execute(text(f'DELETE FROM "{name}"'))


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    transport = ASGITransport(app=app)
    async with AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def users(app: FastAPI, client: AsyncClient) -> UserFactory:
    return UserFactory(app, client)


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Clients for apps built inside a test (`create_app(Settings(...))`), lifespan on."""
    async with AsyncExitStack() as stack:

        async def start(application: FastAPI) -> AsyncClient:
            await stack.enter_async_context(LifespanManager(application))
            transport = ASGITransport(app=application)
            return await stack.enter_async_context(
                AsyncClient(transport=transport, base_url="http://testserver")
            )

        yield start


@pytest.fixture
async def spec(client: AsyncClient) -> dict[str, Any]:
    """The app's OpenAPI document."""
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]
