"""Attacks on the access token: every one is a 401 with `WWW-Authenticate: Bearer`."""

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from httpx import AsyncClient

from app.core.config import Settings, get_settings
from app.main import create_app
from tests.conftest import Serve
from tests.factories import DEFAULT_PASSWORD, UserFactory

ME = "/api/v1/users/me"


def claims_for(user_id: int, **changes: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "ver": 0,  # a new account's token_version
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "type": "access",
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def sign(claims: dict[str, Any], key: str | None = None, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key or get_settings().SECRET_KEY, algorithm=algorithm)


def unsigned(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        raw = json.dumps(data, default=lambda value: int(value.timestamp())).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


async def assert_rejected(client: AsyncClient, token: str) -> None:
    response = await client.get(ME, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 401


async def test_a_well_formed_token_is_accepted(client: AsyncClient, users: UserFactory) -> None:
    """The control for every attack below: the same construction, unaltered, works."""
    user = await users.create(login=False)
    response = await client.get(
        ME, headers={"Authorization": f"Bearer {sign(claims_for(user.id))}"}
    )
    assert response.status_code == 200
    assert response.json()["id"] == user.id


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "Bearer not.a.jwt", "abc"],
)
async def test_missing_or_malformed_token(client: AsyncClient, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await client.get(ME, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_expired_token(client: AsyncClient, users: UserFactory) -> None:
    user = await users.create(login=False)
    past = datetime.now(UTC) - timedelta(hours=1)
    expired = claims_for(user.id, iat=past, exp=past + timedelta(minutes=30))
    await assert_rejected(client, sign(expired))


async def test_token_signed_with_another_key(client: AsyncClient, users: UserFactory) -> None:
    user = await users.create(login=False)
    await assert_rejected(client, sign(claims_for(user.id), key="another-key-" + "x" * 40))


async def test_alg_none_token(client: AsyncClient, users: UserFactory) -> None:
    user = await users.create(login=False)
    await assert_rejected(client, unsigned(claims_for(user.id)))


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_token_with_another_algorithm(client: AsyncClient, users: UserFactory) -> None:
    user = await users.create(login=False)
    await assert_rejected(client, sign(claims_for(user.id), algorithm="HS512"))


async def test_tampered_payload(client: AsyncClient, users: UserFactory) -> None:
    admin = await users.create(superuser=True)
    user = await users.create()
    header, _payload, signature = user.access_token.split(".")
    forged = unsigned(claims_for(admin.id)).split(".")[1]
    await assert_rejected(client, f"{header}.{forged}.{signature}")


async def test_refresh_token_used_as_access_token(client: AsyncClient, users: UserFactory) -> None:
    user = await users.create()
    await assert_rejected(client, user.refresh_token)


@pytest.mark.parametrize("token_type", ["refresh", "ACCESS", "", 1])
async def test_wrong_token_type(client: AsyncClient, users: UserFactory, token_type: Any) -> None:
    user = await users.create(login=False)
    await assert_rejected(client, sign(claims_for(user.id, type=token_type)))


@pytest.mark.parametrize("missing", ["sub", "ver", "exp", "iat", "type"])
async def test_missing_claim(client: AsyncClient, users: UserFactory, missing: str) -> None:
    user = await users.create(login=False)
    claims = claims_for(user.id)
    del claims[missing]
    await assert_rejected(client, sign(claims))


@pytest.mark.parametrize("subject", ["abc", "", "-1", "1.0", 1, "\u00b2", "\u0661"])
async def test_bad_subject(client: AsyncClient, subject: Any) -> None:
    await assert_rejected(client, sign({**claims_for(0), "sub": subject}))


@pytest.mark.parametrize("version", [1, -1, "0", 0.0, False, None, [0], 2**31, 2**64])
async def test_wrong_or_bad_version(client: AsyncClient, users: UserFactory, version: Any) -> None:
    """The version must be the user's token_version (0 for a new account), as an integer."""
    user = await users.create(login=False)
    claims = claims_for(user.id)
    claims["ver"] = version
    await assert_rejected(client, sign(claims))


async def test_token_of_a_deleted_user(client: AsyncClient, users: UserFactory) -> None:
    admin = await users.create(superuser=True)
    user = await users.create()
    assert (await client.get(ME, headers=user.headers)).status_code == 200
    deleted = await client.delete(f"/api/v1/users/{user.id}", headers=admin.headers)
    assert deleted.status_code == 204
    await assert_rejected(client, user.access_token)


async def test_token_of_a_deactivated_user(client: AsyncClient, users: UserFactory) -> None:
    admin = await users.create(superuser=True)
    user = await users.create()
    assert (await client.get(ME, headers=user.headers)).status_code == 200
    patched = await client.patch(
        f"/api/v1/users/{user.id}", json={"is_active": False}, headers=admin.headers
    )
    assert patched.status_code == 200
    await assert_rejected(client, user.access_token)
    reactivated = await client.patch(
        f"/api/v1/users/{user.id}", json={"is_active": True}, headers=admin.headers
    )
    assert reactivated.status_code == 200
    assert (await client.get(ME, headers=user.headers)).status_code == 200


async def test_token_for_an_unknown_user(client: AsyncClient) -> None:
    await assert_rejected(client, sign(claims_for(999_999)))


async def test_an_app_signs_with_its_own_settings(serve: Serve, users: UserFactory) -> None:
    user = await users.create()
    other_key = "another-app-key-" + "y" * 32
    other = await serve(create_app(Settings(SECRET_KEY=other_key, ACCESS_TOKEN_EXPIRE_MINUTES=5)))
    await assert_rejected(other, user.access_token)
    login = await other.post(
        "/api/v1/auth/login", data={"username": user.email, "password": DEFAULT_PASSWORD}
    )
    assert login.status_code == 200
    assert login.json()["expires_in"] == 5 * 60
    token = login.json()["access_token"]
    assert jwt.decode(token, other_key, algorithms=["HS256"])["sub"] == str(user.id)
    me = await other.get(ME, headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
