"""Login throttling (API2, API4): 5 failures per address or per account, then 429 for everyone.

Each test builds its own app with the production limits (tests/conftest.py raises them for the
rest of the suite). The ASGI transport sets the connection's peer, so a test can play callers at
different addresses, or a router that forwards them.
"""

import asyncio
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response

from app.core.config import get_settings
from app.main import create_app
from tests.crud.formats import assert_problem
from tests.factories import TestUser, UserFactory

LOGIN = "/api/v1/auth/login"
LIMIT = 5
WINDOW = 60
BURST = 20
ROUTER = "10.0.0.2"  # a Heroku-style router: every request arrives from it
_unknown = itertools.count()

Headers = Sequence[tuple[str, str]]


@dataclass
class Gate:
    """One app instance (one worker) and callers at chosen addresses."""

    app: FastAPI

    async def login(
        self, email: str, password: str, *, peer: str = "198.51.100.1", headers: Headers = ()
    ) -> Response:
        transport = ASGITransport(app=self.app, client=(peer, 50000))
        async with AsyncClient(transport=transport, base_url="http://testserver") as http:
            return await http.post(
                LOGIN, data={"username": email, "password": password}, headers=list(headers)
            )

    async def fail(self, email: str, **kwargs: Any) -> None:
        response = await self.login(email, "wrong-password", **kwargs)
        assert response.status_code == 401, response.text


Build = Callable[..., Awaitable[Gate]]


@pytest.fixture
async def build(app: FastAPI) -> AsyncIterator[Build]:
    """Apps with the production limits (or `overrides`), sharing the test database."""
    async with AsyncExitStack() as stack:

        async def start(**overrides: Any) -> Gate:
            limits = {"LOGIN_MAX_FAILURES": LIMIT, "LOGIN_WINDOW_SECONDS": WINDOW}
            settings = get_settings().model_copy(update={**limits, **overrides})
            application = create_app(settings)
            await stack.enter_async_context(LifespanManager(application))
            return Gate(application)

        yield start


@pytest.fixture
async def victim(users: UserFactory) -> TestUser:
    return await users.create(login=False)


@pytest.fixture
async def bystander(users: UserFactory) -> TestUser:
    return await users.create(login=False)


def unknown_email() -> str:
    return f"nobody{next(_unknown)}@example.com"


def assert_locked(response: Response, window: int = WINDOW) -> int:
    """429 problem with `Retry-After` in whole seconds within the window; returns it."""
    assert_problem(response, 429, "too-many-login-attempts")
    assert "access_token" not in response.text
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= window
    return retry_after


async def test_five_failures_lock_the_account_even_for_the_right_password(
    build: Build, victim: TestUser
) -> None:
    gate = await build()
    for _ in range(LIMIT):
        await gate.fail(victim.email)
    assert_locked(await gate.login(victim.email, victim.password))
    assert_locked(await gate.login(victim.email, "wrong-password"))


async def test_the_account_limit_holds_from_many_addresses(
    build: Build, victim: TestUser, bystander: TestUser
) -> None:
    gate = await build()
    for n in range(LIMIT):
        # The account key ignores the case of the email.
        email = victim.email.upper() if n % 2 else victim.email
        await gate.fail(email, peer=f"203.0.113.{n + 1}")
    fresh = "203.0.113.200"
    assert_locked(await gate.login(victim.email, victim.password, peer=fresh))
    # The fresh address itself is not locked: only the account is.
    assert (await gate.login(bystander.email, bystander.password, peer=fresh)).status_code == 200


async def test_the_address_limit_holds_across_accounts(build: Build, victim: TestUser) -> None:
    gate = await build()
    attacker = "203.0.113.66"
    for _ in range(LIMIT):
        await gate.fail(unknown_email(), peer=attacker)
    assert_locked(await gate.login(victim.email, victim.password, peer=attacker))
    # The account has no failures of its own: from elsewhere it logs in.
    assert (await gate.login(victim.email, victim.password, peer="203.0.113.67")).status_code == 200


async def test_a_success_resets_the_account_counter(build: Build, victim: TestUser) -> None:
    gate = await build()
    addresses = (f"203.0.113.{n}" for n in itertools.count(1))
    for _ in range(LIMIT - 1):
        await gate.fail(victim.email, peer=next(addresses))
    assert (
        await gate.login(victim.email, victim.password, peer=next(addresses))
    ).status_code == 200
    # Without the reset the account would now be one failure from the limit.
    for _ in range(LIMIT - 1):
        await gate.fail(victim.email, peer=next(addresses))
    assert (
        await gate.login(victim.email, victim.password, peer=next(addresses))
    ).status_code == 200


async def test_a_success_does_not_reset_the_address_counter(
    build: Build, victim: TestUser, bystander: TestUser
) -> None:
    """An attacker with an account of their own cannot launder the address's failures."""
    gate = await build()
    attacker = "203.0.113.66"
    for _ in range(LIMIT - 1):
        await gate.fail(victim.email, peer=attacker)
    own = await gate.login(bystander.email, bystander.password, peer=attacker)
    assert own.status_code == 200
    await gate.fail(unknown_email(), peer=attacker)
    assert_locked(await gate.login(bystander.email, bystander.password, peer=attacker))


async def test_the_limit_holds_across_two_app_instances(build: Build, victim: TestUser) -> None:
    """Counters live in the database: failures seen by one worker count in the other."""
    first, second = await build(), await build()
    for n in range(LIMIT):
        await (first if n % 2 else second).fail(victim.email, peer=f"203.0.113.{n + 1}")
    for gate in (first, second):
        assert_locked(await gate.login(victim.email, victim.password, peer="203.0.113.99"))


async def test_a_burst_of_parallel_guesses_gets_only_the_limit_checked(
    build: Build, victim: TestUser
) -> None:
    """Attempts are counted before the password is checked, so parallel guesses see each other."""
    first, second = await build(), await build()
    guesses = [
        (first if n % 2 else second).login(victim.email, f"guess-{n}", peer=f"203.0.113.{n + 1}")
        for n in range(BURST)
    ]
    statuses = Counter(response.status_code for response in await asyncio.gather(*guesses))
    assert statuses == {401: LIMIT, 429: BURST - LIMIT}
    assert_locked(await first.login(victim.email, victim.password, peer="203.0.113.99"))


async def test_retry_after_counts_down_to_the_unlock(build: Build, victim: TestUser) -> None:
    window = 3
    gate = await build(LOGIN_WINDOW_SECONDS=window)
    for _ in range(LIMIT):
        await gate.fail(victim.email)
    first = assert_locked(await gate.login(victim.email, victim.password), window)
    await asyncio.sleep(1.1)
    later = assert_locked(await gate.login(victim.email, victim.password), window)
    assert later < first
    await asyncio.sleep(later)
    assert (await gate.login(victim.email, victim.password)).status_code == 200


async def test_a_forged_x_forwarded_for_is_ignored_without_proxies(
    build: Build, victim: TestUser
) -> None:
    """PROXY_HOPS=0: the connection's peer counts, whatever the client writes in the header."""
    gate = await build(PROXY_HOPS=0)
    attacker = "203.0.113.66"
    for n in range(LIMIT):
        forged = [("X-Forwarded-For", f"192.0.2.{n + 1}")]
        await gate.fail(unknown_email(), peer=attacker, headers=forged)
    retry = await gate.login(
        victim.email,
        victim.password,
        peer=attacker,
        headers=[("X-Forwarded-For", "192.0.2.200"), ("X-Real-IP", "192.0.2.201")],
    )
    assert_locked(retry)
    assert (await gate.login(victim.email, victim.password, peer="203.0.113.67")).status_code == 200


async def test_entries_a_client_prepends_are_ignored_behind_one_proxy(
    build: Build, victim: TestUser
) -> None:
    """PROXY_HOPS=1: the entry the router appended (the last one) counts, not the client's."""
    gate = await build(PROXY_HOPS=1)
    real = "203.0.113.66"
    forgeries: list[Headers] = [
        [("X-Forwarded-For", f"192.0.2.1, {real}")],
        [("X-Forwarded-For", f"192.0.2.2,192.0.2.3 , {real}")],
        [("X-Forwarded-For", "192.0.2.4"), ("X-Forwarded-For", real)],  # two header lines
        [("X-Forwarded-For", f"unknown, {real}")],
        [("X-Forwarded-For", f"{real}, {real}")],
    ]
    for forged in forgeries:
        await gate.fail(unknown_email(), peer=ROUTER, headers=forged)
    retry = [("X-Forwarded-For", f"192.0.2.99, {real}")]
    assert_locked(await gate.login(victim.email, victim.password, peer=ROUTER, headers=retry))
    # Another client behind the same router, with the same forged prefix, is not locked.
    other = [("X-Forwarded-For", "192.0.2.99, 203.0.113.67")]
    response = await gate.login(victim.email, victim.password, peer=ROUTER, headers=other)
    assert response.status_code == 200
