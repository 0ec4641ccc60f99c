"""Access tokens end at once when their user's sessions should: a password change, a logout
everywhere, an account deletion. Checked on the hand-written routes (ORM caller) and on the
generated ones (the one-query caller)."""

from collections.abc import Awaitable, Callable

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import update

from app.models.user import User
from tests.crud.formats import assert_problem
from tests.factories import DEFAULT_PASSWORD, TestUser, UserFactory

ME = "/api/v1/users/me"
POSTS = "/api/v1/posts"
NEW_PASSWORD = "a-brand-new-pass"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def assert_token_works(client: AsyncClient, token: str) -> None:
    assert (await client.get(ME, headers=bearer(token))).status_code == 200
    created = await client.post(POSTS, json={"title": "still me"}, headers=bearer(token))
    assert created.status_code == 201, created.text
    assert (await client.get(POSTS, headers=bearer(token))).status_code == 200


async def assert_token_ended(client: AsyncClient, token: str) -> None:
    for response in (
        await client.get(ME, headers=bearer(token)),
        await client.post(POSTS, json={"title": "not me"}, headers=bearer(token)),
        await client.get(POSTS, headers=bearer(token)),  # a public read: the token is still 401
    ):
        assert_problem(response, 401, "invalid-token")
        assert response.headers["www-authenticate"] == "Bearer"


async def change_password(client: AsyncClient, user: TestUser, _admin: TestUser) -> None:
    body = {"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD}
    response = await client.post(f"{ME}/password", json=body, headers=user.headers)
    assert response.status_code == 204
    user.password = NEW_PASSWORD


async def logout_everywhere(client: AsyncClient, user: TestUser, _admin: TestUser) -> None:
    response = await client.post("/api/v1/auth/logout-all", headers=user.headers)
    assert response.status_code == 204
    assert response.content == b""


async def delete_account(client: AsyncClient, user: TestUser, admin: TestUser) -> None:
    response = await client.delete(f"/api/v1/users/{user.id}", headers=admin.headers)
    assert response.status_code == 204


Event = Callable[[AsyncClient, TestUser, TestUser], Awaitable[None]]
EVENTS: dict[str, Event] = {
    "password-change": change_password,
    "logout-all": logout_everywhere,
    "deletion": delete_account,
}


@pytest.mark.parametrize("event", sorted(EVENTS))
async def test_old_tokens_end_at_once(client: AsyncClient, users: UserFactory, event: str) -> None:
    admin = await users.create(superuser=True)
    user = await users.create()
    other_device = TestUser(id=user.id, email=user.email, password=user.password)
    await users.login(other_device)
    for device in (user, other_device):
        await assert_token_works(client, device.access_token)

    await EVENTS[event](client, user, admin)

    for device in (user, other_device):
        await assert_token_ended(client, device.access_token)
        refreshed = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": device.refresh_token}
        )
        assert_problem(refreshed, 401, "invalid-token")
    await assert_token_works(client, admin.access_token)  # nobody else's
    login = await client.post(
        "/api/v1/auth/login", data={"username": user.email, "password": user.password}
    )
    if event == "deletion":
        assert login.status_code == 401
    else:
        assert login.status_code == 200
        await assert_token_works(client, login.json()["access_token"])


async def test_logout_all_needs_a_valid_token(client: AsyncClient, users: UserFactory) -> None:
    assert_problem(await client.post("/api/v1/auth/logout-all"), 401)
    user = await users.create()
    await logout_everywhere(client, user, user)
    # The token it ended cannot end the next login's tokens.
    assert_problem(await client.post("/api/v1/auth/logout-all", headers=user.headers), 401)


async def test_a_refresh_token_from_before_a_version_bump_is_refused(
    app: FastAPI, client: AsyncClient, users: UserFactory
) -> None:
    """A bump ends the refresh tokens it did not revoke too (one issued by a refresh that ran
    while the logout-everywhere committed)."""
    user = await users.create()
    async with app.state.engine.begin() as connection:
        await connection.execute(
            update(User).where(User.id == user.id).values(token_version=User.token_version + 1)
        )
    response = await client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    assert_problem(response, 401, "invalid-token")
    await assert_token_ended(client, user.access_token)


async def test_a_new_account_never_gets_a_deleted_users_id(
    client: AsyncClient, users: UserFactory
) -> None:
    """Else the deleted user's tokens would name the new account (SQLite: AUTOINCREMENT)."""
    admin = await users.create(superuser=True)
    deleted = await users.create()
    await delete_account(client, deleted, admin)
    newcomer = await users.create()
    assert newcomer.id > deleted.id
    await assert_token_ended(client, deleted.access_token)
    await assert_token_works(client, newcomer.access_token)
