"""Login throttling (API2, API4): 5 failures per address or per account, then 429 for everyone.

Each test builds its own app with the production limits (tests/security/gates.py); the ASGI
transport sets the connection's peer, so a test can play callers at different addresses, or a
router that forwards them. Known devices, which the account's counter does not hold, are in
test_known_devices.py.
"""

import asyncio
import itertools
import random
from collections import Counter
from functools import partial

from fastapi import FastAPI
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from tests.deploy.test_proxy_headers import heroku_config
from tests.factories import TestUser
from tests.security.gates import (
    LIMIT,
    WINDOW,
    Build,
    Headers,
    age_attempts,
    assert_locked,
    unknown_email,
)

BURST = 20
ROUTER = "10.0.0.2"  # a Heroku-style router: every request arrives from it


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


async def test_retry_after_counts_down_to_the_unlock(
    app: FastAPI, build: Build, victim: TestUser
) -> None:
    """The failures are moved into the past, not waited for: no timing, however busy the box."""
    gate = await build()
    for _ in range(LIMIT):
        await gate.fail(victim.email)
    first = assert_locked(await gate.login(victim.email, victim.password))
    await age_attempts(app, WINDOW // 2)
    later = assert_locked(await gate.login(victim.email, victim.password))
    assert later <= first - WINDOW // 2
    # The lock ends when Retry-After said.
    await age_attempts(app, later)
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


async def test_the_heroku_recipe_counts_the_address_the_router_appended(
    build: Build, victim: TestUser
) -> None:
    """docs/deploy.md's settings, behind uvicorn's proxy headers as its worker runs them.

    With FORWARDED_ALLOW_IPS='*' uvicorn makes the leftmost X-Forwarded-For entry, which the
    client writes, the peer; PROXY_HOPS=1 counts the entry the router appended instead.
    """
    config = heroku_config()
    trusted = config["FORWARDED_ALLOW_IPS"]
    proxy = partial(ProxyHeadersMiddleware, trusted_hosts=trusted)
    gate = await build(wrap=proxy, PROXY_HOPS=int(config.get("PROXY_HOPS", "0")))
    real, rng = "203.0.113.66", random.Random(20)
    statuses = []
    for _ in range(BURST):
        forged = ", ".join(f"192.0.2.{rng.randint(1, 254)}" for _ in range(rng.randint(1, 3)))
        headers = [("X-Forwarded-For", f"{forged}, {real}")]
        response = await gate.login(unknown_email(), "wrong-password", peer=ROUTER, headers=headers)
        statuses.append(response.status_code)
    assert statuses == [401] * LIMIT + [429] * (BURST - LIMIT)
    other = [("X-Forwarded-For", "192.0.2.1, 203.0.113.67")]
    response = await gate.login(victim.email, victim.password, peer=ROUTER, headers=other)
    assert response.status_code == 200
