"""Known devices (API2): an attacker's failures lock an account for unknown clients only.

Every successful login hands its client a signed device token (JSON `device_token` and an
HttpOnly cookie). A login that brings back a valid one of the same account is not held by the
account's failure counter, and its own failures count against the device; the address
counter holds for everyone.
"""

import time
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from httpx import Response

from app.core.config import get_settings
from app.services.devices import sign_device_token
from tests.factories import TestUser, UserFactory
from tests.security.gates import (
    LIMIT,
    Build,
    Gate,
    Headers,
    assert_locked,
    unknown_email,
)

OWNER = "198.51.100.7"
ATTACKER = "203.0.113.66"


def in_header(token: str) -> Headers:
    return [("X-Device-Token", token)]


def in_cookie(token: str) -> Headers:
    return [("Cookie", f"device_token={token}")]


Send = Callable[[str], Headers]


def device_token(response: Response) -> str:
    assert response.status_code == 200, response.text
    token = response.json()["device_token"]
    assert isinstance(token, str) and token
    return token


async def known_device(gate: Gate, user: TestUser, peer: str = OWNER) -> str:
    return device_token(await gate.login(user.email, user.password, peer=peer))


async def lock_account(gate: Gate, email: str, headers: Headers = ()) -> None:
    """The attacker's failures, each from a fresh address: only the account counter fills."""
    for n in range(LIMIT):
        await gate.fail(email, peer=f"203.0.113.{n + 1}", headers=headers)


@pytest.mark.parametrize("send", [in_header, in_cookie], ids=["header", "cookie"])
async def test_the_owner_logs_in_from_a_known_device_while_the_account_is_locked(
    build: Build, victim: TestUser, send: Send
) -> None:
    gate = await build()
    token = await known_device(gate, victim)
    await lock_account(gate, victim.email)
    assert_locked(await gate.login(victim.email, victim.password, peer="203.0.113.200"))

    # Known by its token, not by its address: from a new network too.
    for peer in (OWNER, "192.0.2.77"):
        response = await gate.login(victim.email, victim.password, peer=peer, headers=send(token))
        device_token(response)
    # The owner's success does not unlock the account for unknown clients (the attacker).
    assert_locked(await gate.login(victim.email, victim.password, peer="203.0.113.201"))


@pytest.mark.parametrize("environment", ["test", "production"])
async def test_every_login_sets_the_device_cookie(
    build: Build, victim: TestUser, environment: str
) -> None:
    gate = await build(ENVIRONMENT=environment)
    response = await gate.login(victim.email, victim.password)
    token = device_token(response)
    [cookie] = response.headers.get_list("set-cookie")
    name_value, *attributes = [part.strip() for part in cookie.split(";")]
    assert name_value == f"device_token={token}"
    flags = {attribute.lower() for attribute in attributes}
    assert {"httponly", "path=/api/v1/auth", "samesite=lax", "max-age=7776000"} <= flags
    assert ("secure" in flags) is (environment == "production")
    # A new token on every login.
    assert device_token(await gate.login(victim.email, victim.password)) != token


async def test_a_known_devices_failures_count_against_it_not_the_account(
    build: Build, victim: TestUser
) -> None:
    """The owner's typos do not lock their other devices; a stolen token gets LIMIT guesses."""
    gate = await build()
    token = await known_device(gate, victim)
    for n in range(LIMIT):
        await gate.fail(victim.email, peer=f"198.51.100.{n + 20}", headers=in_header(token))
    fresh = "198.51.100.99"
    assert_locked(
        await gate.login(victim.email, victim.password, peer=fresh, headers=in_header(token))
    )
    assert (await gate.login(victim.email, victim.password, peer=fresh)).status_code == 200


async def test_a_device_token_of_another_account_does_not_lift_the_lock(
    build: Build, victim: TestUser, bystander: TestUser
) -> None:
    gate = await build()
    own = await known_device(gate, bystander, peer=ATTACKER)
    await lock_account(gate, victim.email)
    retry = await gate.login(victim.email, victim.password, peer=OWNER, headers=in_header(own))
    assert_locked(retry)


async def test_failures_with_another_accounts_device_token_count_against_the_account(
    build: Build, victim: TestUser, bystander: TestUser
) -> None:
    """The attacker's own known device: its guesses at the victim count as an unknown client's."""
    gate = await build()
    own = await known_device(gate, bystander, peer=ATTACKER)
    await lock_account(gate, victim.email, headers=in_header(own))
    assert_locked(await gate.login(victim.email, victim.password, peer="203.0.113.200"))


def resigned(token: str, *, expires: int | None = None, secret: str | None = None) -> str:
    user_id, version, valid_until, device, _signature = token.split(".")
    return sign_device_token(
        int(user_id),
        int(version),
        int(valid_until) if expires is None else expires,
        device,
        secret or get_settings().SECRET_KEY,
    )


@pytest.mark.parametrize(
    "spoil",
    [
        "tampered-expiry",
        "tampered-signature",
        "another-key",
        "expired",
        "password-changed",
        "logged-out-everywhere",
    ],
)
async def test_a_forged_expired_or_stale_device_token_does_not_help(
    app: FastAPI, build: Build, users: UserFactory, spoil: str
) -> None:
    owner = await users.create()
    gate = await build()
    token = await known_device(gate, owner)
    user_id, version, expires, device, signature = token.split(".")
    match spoil:
        case "tampered-expiry":
            token = f"{user_id}.{version}.{int(expires) + 86_400}.{device}.{signature}"
        case "tampered-signature":
            token = token[:-1] + ("0" if token[-1] != "0" else "1")
        case "another-key":
            token = resigned(token, secret="another-secret-key-that-is-long-enough-01234")
        case "expired":
            token = resigned(token, expires=int(time.time()) - 1)
        case "password-changed":
            new = "a-brand-new-password"
            body = {"current_password": owner.password, "new_password": new}
            changed = await gate.request(
                "POST", "/api/v1/users/me/password", json=body, headers=owner.headers.items()
            )
            assert changed.status_code == 204, changed.text
            owner.password = new
        case "logged-out-everywhere":
            ended = await gate.request(
                "POST", "/api/v1/auth/logout-all", headers=owner.headers.items()
            )
            assert ended.status_code == 204, ended.text
    await lock_account(gate, owner.email)
    retry = await gate.login(owner.email, owner.password, peer=OWNER, headers=in_header(token))
    assert_locked(retry)


async def test_spraying_from_one_address_is_still_capped_for_a_known_device(
    build: Build, bystander: TestUser
) -> None:
    """An attacker's own known device does not lift the address counter."""
    gate = await build()
    own = in_header(await known_device(gate, bystander, peer=ATTACKER))
    for _ in range(LIMIT):
        await gate.fail(unknown_email(), peer=ATTACKER, headers=own)
    assert_locked(await gate.login(unknown_email(), "guess", peer=ATTACKER, headers=own))
    assert_locked(await gate.login(bystander.email, bystander.password, peer=ATTACKER, headers=own))
