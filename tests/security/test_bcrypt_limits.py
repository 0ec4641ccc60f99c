"""Every route that runs bcrypt is limited in the app (API4, API6), not only at the edge.

Sign-ups per client address (REGISTER_MAX_PER_WINDOW per REGISTER_WINDOW_SECONDS); wrong
current passwords (password change, email change) like failed logins: per account and per
address. Counted in the database before bcrypt runs, like the login throttle.
"""

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from httpx import Response

from tests.factories import DEFAULT_PASSWORD, TestUser, UserFactory
from tests.security.gates import LIMIT, WINDOW, Build, Gate, assert_locked, unknown_email

REGISTER = "/api/v1/auth/register"
SIGN_UPS = 3
HOUR = 3600


async def register(gate: Gate, peer: str, email: str | None = None) -> Response:
    body = {"email": email or unknown_email(), "password": DEFAULT_PASSWORD}
    return await gate.request("POST", REGISTER, peer=peer, json=body)


async def test_a_sign_up_burst_from_one_address_gets_429_after_the_limit(build: Build) -> None:
    gate = await build(REGISTER_MAX_PER_WINDOW=SIGN_UPS, REGISTER_WINDOW_SECONDS=HOUR)
    statuses = [(await register(gate, "203.0.113.9")).status_code for _ in range(SIGN_UPS)]
    assert statuses == [201] * SIGN_UPS
    email = unknown_email()
    assert_locked(await register(gate, "203.0.113.9", email), HOUR, "too-many-requests")
    # Another address is not held, and the refused email was not taken.
    assert (await register(gate, "203.0.113.10", email)).status_code == 201


async def test_taken_emails_count_too(build: Build, victim: TestUser) -> None:
    """409 answers which emails exist: probing them is limited like signing up."""
    gate = await build(REGISTER_MAX_PER_WINDOW=SIGN_UPS, REGISTER_WINDOW_SECONDS=HOUR)
    for _ in range(SIGN_UPS):
        assert (await register(gate, "203.0.113.9", victim.email)).status_code == 409
    assert_locked(await register(gate, "203.0.113.9", victim.email), HOUR, "too-many-requests")


async def test_a_parallel_sign_up_burst_gets_only_the_limit_through(build: Build) -> None:
    limits = {"REGISTER_MAX_PER_WINDOW": SIGN_UPS, "REGISTER_WINDOW_SECONDS": HOUR}
    first, second = await build(**limits), await build(**limits)
    burst = [register(first if n % 2 else second, "203.0.113.9") for n in range(10)]
    statuses = Counter(response.status_code for response in await asyncio.gather(*burst))
    assert statuses == {201: SIGN_UPS, 429: 10 - SIGN_UPS}


Body = Callable[[str], dict[str, Any]]
CHECKS = [
    pytest.param(
        "POST",
        "/api/v1/users/me/password",
        lambda password: {"current_password": password, "new_password": "new-password-123"},
        id="password-change",
    ),
    pytest.param(
        "PATCH",
        "/api/v1/users/me",
        lambda password: {"email": "moved@example.com", "current_password": password},
        id="email-change",
    ),
]


@pytest.mark.parametrize(("method", "url", "body"), CHECKS)
async def test_guessing_the_current_password_gets_429(
    build: Build, users: UserFactory, method: str, url: str, body: Body
) -> None:
    """A stolen access token does not buy unlimited guesses, from any number of addresses."""
    user = await users.create()
    gate = await build()
    headers = list(user.headers.items())
    for n in range(LIMIT):
        wrong = await gate.request(
            method, url, peer=f"203.0.113.{n + 1}", headers=headers, json=body(f"guess-{n}")
        )
        assert wrong.status_code == 400, wrong.text
    right = await gate.request(
        method, url, peer="203.0.113.99", headers=headers, json=body(DEFAULT_PASSWORD)
    )
    assert_locked(right, WINDOW, "too-many-requests")
    # Nothing changed: the old password and email still log in.
    assert (await gate.login(user.email, DEFAULT_PASSWORD)).status_code == 200


@pytest.mark.parametrize(("method", "url", "body"), CHECKS)
async def test_wrong_current_passwords_from_one_address_are_capped_across_accounts(
    build: Build, users: UserFactory, method: str, url: str, body: Body
) -> None:
    accounts = [await users.create(), await users.create()]
    gate = await build()
    peer = "203.0.113.66"

    async def check(user: TestUser, password: str, from_: str = peer) -> Response:
        headers = list(user.headers.items())
        return await gate.request(method, url, peer=from_, headers=headers, json=body(password))

    for n in range(LIMIT):
        assert (await check(accounts[n % 2], "wrong-guess")).status_code == 400
    assert_locked(await check(accounts[0], DEFAULT_PASSWORD), WINDOW, "too-many-requests")
    # Neither account is at its own limit: from elsewhere the right password works.
    assert (await check(accounts[0], DEFAULT_PASSWORD, "203.0.113.67")).is_success


async def test_a_right_current_password_resets_the_account_count(
    build: Build, users: UserFactory
) -> None:
    user = await users.create()
    gate = await build()
    headers = list(user.headers.items())
    url = "/api/v1/users/me"
    for round_ in range(2):
        for n in range(LIMIT - 1):
            guess = {"email": "moved@example.com", "current_password": f"guess-{n}"}
            peer = f"203.0.113.{10 * round_ + n + 1}"
            wrong = await gate.request("PATCH", url, peer=peer, headers=headers, json=guess)
            assert wrong.status_code == 400, wrong.text
        # The right password is not held by the failures before it, and clears them.
        right = {"full_name": f"Round {round_}", "current_password": DEFAULT_PASSWORD}
        right["email"] = f"moved{round_}@example.com"
        response = await gate.request(
            "PATCH", url, peer="203.0.113.99", headers=headers, json=right
        )
        assert response.status_code == 200, response.text
