import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from tests.api.test_refresh_tokens import rotated_long_ago
from tests.factories import DEFAULT_PASSWORD, UserFactory

PROBLEM = "application/problem+json"


async def test_register_returns_public_user_and_location(client: AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": "Alice@Example.COM", "password": "s3cret-pass", "full_name": "Alice"},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "alice@example.com"
    assert body["is_active"] is True and body["is_superuser"] is False
    assert "hashed_password" not in body and "password" not in body
    assert body["created_at"].endswith("Z") or body["created_at"].endswith("+00:00")
    assert response.headers["location"] == f"http://testserver/api/v1/users/{body['id']}"


async def test_register_taken_email_is_409_case_insensitively(
    client: AsyncClient, users: UserFactory
) -> None:
    await users.create(email="bob@example.com", login=False)
    response = await client.post(
        "/api/v1/auth/register", json={"email": "BOB@example.com", "password": "another-pass"}
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"].endswith("/email-taken")
    assert body["errors"][0]["loc"] == ["body", "email"]


@pytest.mark.parametrize(
    "payload",
    [
        {"email": "not-an-email", "password": "long-enough"},
        {"email": "a@example.com", "password": "short"},
        {"email": "a@example.com", "password": "é" * 37},  # 74 bytes in UTF-8
        {"email": "a@example.com", "password": "long-enough", "is_superuser": True},
        {"email": "a@example.com", "password": "long-enough", "hashed_password": "x"},
        {"password": "long-enough"},
    ],
)
async def test_register_rejects_bad_input(client: AsyncClient, payload: dict[str, object]) -> None:
    response = await client.post("/api/v1/auth/register", json=payload)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["errors"]
    users_left = await client.post(
        "/api/v1/auth/login", data={"username": "a@example.com", "password": "long-enough"}
    )
    assert users_left.status_code == 401


async def test_register_accepts_72_byte_password(client: AsyncClient) -> None:
    password = "é" * 36
    response = await client.post(
        "/api/v1/auth/register", json={"email": "c@example.com", "password": password}
    )
    assert response.status_code == 201
    login = await client.post(
        "/api/v1/auth/login", data={"username": "c@example.com", "password": password}
    )
    assert login.status_code == 200


async def test_login_returns_token_pair(client: AsyncClient, users: UserFactory) -> None:
    user = await users.create(login=False)
    response = await client.post(
        "/api/v1/auth/login", data={"username": user.email.upper(), "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 30 * 60
    assert body["access_token"] and body["refresh_token"]
    me = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200 and me.json()["id"] == user.id


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("nobody@example.com", DEFAULT_PASSWORD),
        ("known@example.com", "wrong-password"),
        ("known@example.com", "x" * 100),
    ],
)
async def test_login_failures_are_indistinguishable(
    client: AsyncClient, users: UserFactory, username: str, password: str
) -> None:
    await users.create(email="known@example.com", login=False)
    response = await client.post(
        "/api/v1/auth/login", data={"username": username, "password": password}
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["detail"] == "Incorrect email or password"


async def test_login_inactive_user_is_403(client: AsyncClient, users: UserFactory) -> None:
    admin = await users.create(superuser=True)
    user = await users.create(login=False)
    await client.patch(f"/api/v1/users/{user.id}", json={"is_active": False}, headers=admin.headers)
    response = await client.post(
        "/api/v1/auth/login", data={"username": user.email, "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 403
    assert response.json()["type"].endswith("/inactive-user")


async def test_refresh_rotates_tokens(
    app: FastAPI, client: AsyncClient, users: UserFactory
) -> None:
    user = await users.create()
    response = await client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    assert response.status_code == 200
    pair = response.json()
    assert pair["refresh_token"] != user.refresh_token
    me = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {pair['access_token']}"}
    )
    assert me.status_code == 200
    # A replay of the spent token is theft: it fails, and so does the thief's or the
    # owner's newer token (the whole login ends).
    await rotated_long_ago(app, user.refresh_token)
    replay = await client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    assert replay.status_code == 401
    assert replay.headers["www-authenticate"] == "Bearer"
    again = await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert again.status_code == 401


@pytest.mark.parametrize("token", ["", "garbage", "a" * 256])
async def test_refresh_with_unknown_token_is_401(client: AsyncClient, token: str) -> None:
    response = await client.post("/api/v1/auth/refresh", json={"refresh_token": token})
    assert response.status_code == 401


async def test_refresh_rejects_access_token(client: AsyncClient, users: UserFactory) -> None:
    user = await users.create()
    response = await client.post("/api/v1/auth/refresh", json={"refresh_token": user.access_token})
    assert response.status_code in (401, 422)


async def test_logout_revokes_refresh_token(client: AsyncClient, users: UserFactory) -> None:
    user = await users.create()
    response = await client.post("/api/v1/auth/logout", json={"refresh_token": user.refresh_token})
    assert response.status_code == 204
    refresh = await client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    assert refresh.status_code == 401
    again = await client.post("/api/v1/auth/logout", json={"refresh_token": user.refresh_token})
    assert again.status_code == 401


async def test_refresh_for_deactivated_user_is_401(client: AsyncClient, users: UserFactory) -> None:
    admin = await users.create(superuser=True)
    user = await users.create()
    await client.patch(f"/api/v1/users/{user.id}", json={"is_active": False}, headers=admin.headers)
    response = await client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    assert response.status_code == 401
