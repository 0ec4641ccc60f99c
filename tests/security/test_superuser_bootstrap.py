"""scripts/create_superuser.py (run by every release) creates the first superuser only while
there is no superuser at all: never again once the operator renamed or deleted that account,
and never by promoting an account someone registered with its email."""

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select

from app.core.config import get_settings
from app.models.user import User
from scripts.create_superuser import ensure_first_superuser
from tests.factories import UserFactory

EMAIL, PASSWORD = "first-admin@example.com", "first-admin-password"


@pytest.fixture
def bootstrap_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("FIRST_SUPERUSER_EMAIL", EMAIL)
    monkeypatch.setenv("FIRST_SUPERUSER_PASSWORD", PASSWORD)
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


async def user_count(app: FastAPI) -> int:
    async with app.state.engine.connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(User))).scalar_one())


async def bootstrap_login(client: AsyncClient) -> dict[str, object] | None:
    """The bootstrap account as /users/me shows it, or None if its login fails."""
    login = await client.post("/api/v1/auth/login", data={"username": EMAIL, "password": PASSWORD})
    if login.status_code != 200:
        return None
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    me: dict[str, object] = (await client.get("/api/v1/users/me", headers=headers)).json()
    return me


@pytest.mark.usefixtures("bootstrap_settings")
async def test_creates_the_first_superuser_once(app: FastAPI, client: AsyncClient) -> None:
    assert await ensure_first_superuser() == f"Created superuser {EMAIL}"
    me = await bootstrap_login(client)
    assert me is not None and me["is_superuser"] is True
    assert await ensure_first_superuser() == f"Superuser {EMAIL} already exists"
    assert await user_count(app) == 1


@pytest.mark.usefixtures("bootstrap_settings")
async def test_a_renamed_first_superuser_is_not_created_again(
    app: FastAPI, client: AsyncClient
) -> None:
    await ensure_first_superuser()
    me = await bootstrap_login(client)
    assert me is not None
    login = await client.post("/api/v1/auth/login", data={"username": EMAIL, "password": PASSWORD})
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    renamed = await client.patch(
        f"/api/v1/users/{me['id']}", json={"email": "ops@example.com"}, headers=headers
    )
    assert renamed.status_code == 200

    assert "not created" in await ensure_first_superuser()
    assert await bootstrap_login(client) is None
    assert await user_count(app) == 1


@pytest.mark.usefixtures("bootstrap_settings")
async def test_a_deleted_first_superuser_is_not_created_again(
    app: FastAPI, client: AsyncClient, users: UserFactory
) -> None:
    await ensure_first_superuser()
    me = await bootstrap_login(client)
    assert me is not None
    successor = await users.create(superuser=True)
    deleted = await client.delete(f"/api/v1/users/{me['id']}", headers=successor.headers)
    assert deleted.status_code == 204

    assert "not created" in await ensure_first_superuser()
    assert await bootstrap_login(client) is None
    assert await user_count(app) == 1


@pytest.mark.usefixtures("bootstrap_settings")
async def test_an_account_registered_with_the_email_is_never_promoted(
    app: FastAPI, client: AsyncClient
) -> None:
    registered = await client.post(
        "/api/v1/auth/register", json={"email": EMAIL, "password": PASSWORD}
    )
    assert registered.status_code == 201

    assert "no superuser created" in await ensure_first_superuser()
    me = await bootstrap_login(client)
    assert me is not None and me["is_superuser"] is False
    assert await user_count(app) == 1


async def test_nothing_happens_without_the_settings(app: FastAPI) -> None:
    assert "not set" in await ensure_first_superuser()
    assert await user_count(app) == 0
