"""Refresh-token families: rotation, reuse detection, the absolute expiry, concurrency, logout.

Times move in the database, never by sleeping.
"""

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import func, text, update
from sqlmodel import col, select

from app.core.db import utcnow
from app.core.security import refresh_token_digest
from app.models.user import RefreshToken
from app.services.accounts import REUSE_GRACE
from tests.crud.formats import assert_problem
from tests.factories import TestUser, UserFactory

REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"


async def refresh(client: AsyncClient, token: str) -> Response:
    return await client.post(REFRESH, json={"refresh_token": token})


async def stored(app: FastAPI, token: str) -> RefreshToken:
    async with app.state.sessionmaker() as session:
        digest = refresh_token_digest(token)
        query = select(RefreshToken).where(RefreshToken.token_digest == digest)
        return (await session.exec(query)).one()


async def set_times(app: FastAPI, token: str, *, family: bool = False, **values: Any) -> None:
    """Change the times of `token`'s row, or of every row of its family."""
    row = await stored(app, token)
    where = (
        RefreshToken.family == row.family
        if family
        else RefreshToken.token_digest == refresh_token_digest(token)
    )
    async with app.state.engine.begin() as connection:
        await connection.execute(update(RefreshToken).where(where).values(**values))


async def rotated_long_ago(app: FastAPI, token: str) -> None:
    """As if `token` had been rotated before the reuse grace: a replay is theft, not a race."""
    await set_times(app, token, revoked_at=utcnow() - REUSE_GRACE - timedelta(seconds=1))


async def revoked_in_family(app: FastAPI, token: str) -> int:
    family = (await stored(app, token)).family
    async with app.state.engine.connect() as connection:
        query = (
            select(func.count())
            .select_from(RefreshToken)
            .where(RefreshToken.family == family, col(RefreshToken.revoked_at).is_not(None))
        )
        return int((await connection.execute(query)).scalar_one())


async def test_refresh_continues_the_family_of_the_login(
    app: FastAPI, client: AsyncClient, users: UserFactory
) -> None:
    user = await users.create()
    first = await stored(app, user.refresh_token)
    response = await refresh(client, user.refresh_token)
    assert response.status_code == 200
    following = await stored(app, response.json()["refresh_token"])
    assert following.family == first.family
    assert following.family_expires_at == first.family_expires_at
    assert following.revoked_at is None
    assert (await stored(app, user.refresh_token)).revoked_at is not None
    # A second login is a family of its own.
    second = TestUser(id=user.id, email=user.email, password=user.password)
    await users.login(second)
    assert (await stored(app, second.refresh_token)).family != first.family


async def test_a_login_family_ends_after_refresh_token_max_days(
    app: FastAPI, client: AsyncClient, users: UserFactory
) -> None:
    settings = app.state.settings
    user = await users.create()
    row = await stored(app, user.refresh_token)
    family_days = row.family_expires_at - row.created_at
    assert abs(family_days - timedelta(days=settings.REFRESH_TOKEN_MAX_DAYS)) < timedelta(seconds=5)
    token_days = row.expires_at - row.created_at
    assert abs(token_days - timedelta(days=settings.REFRESH_TOKEN_EXPIRE_DAYS)) < timedelta(
        seconds=5
    )


async def test_replay_of_a_rotated_token_revokes_its_family(
    app: FastAPI, client: AsyncClient, users: UserFactory
) -> None:
    victim = await users.create()
    other_device = TestUser(id=victim.id, email=victim.email, password=victim.password)
    await users.login(other_device)
    second = (await refresh(client, victim.refresh_token)).json()["refresh_token"]
    third = (await refresh(client, second)).json()["refresh_token"]
    await rotated_long_ago(app, victim.refresh_token)

    assert_problem(await refresh(client, victim.refresh_token), 401, "invalid-token")

    assert_problem(await refresh(client, third), 401, "invalid-token")
    assert await revoked_in_family(app, third) == 3
    # Only that login's family: the other device still refreshes.
    assert (await refresh(client, other_device.refresh_token)).status_code == 200


async def test_no_refresh_after_the_family_ends(
    app: FastAPI, client: AsyncClient, users: UserFactory
) -> None:
    user = await users.create()
    ends = utcnow() + timedelta(hours=1)
    await set_times(app, user.refresh_token, family=True, family_expires_at=ends)
    response = await refresh(client, user.refresh_token)
    assert response.status_code == 200
    latest = response.json()["refresh_token"]
    # Refreshing never extends the family, and no token outlives it.
    assert (await stored(app, latest)).family_expires_at == ends
    assert (await stored(app, latest)).expires_at == ends

    await set_times(app, latest, family=True, family_expires_at=utcnow() - timedelta(seconds=1))
    assert_problem(await refresh(client, latest), 401, "invalid-token")
    assert (await stored(app, latest)).revoked_at is None  # refused, not rotated


async def test_an_expired_refresh_token_is_401(
    app: FastAPI, client: AsyncClient, users: UserFactory
) -> None:
    user = await users.create()
    await set_times(app, user.refresh_token, expires_at=utcnow() - timedelta(seconds=1))
    response = await refresh(client, user.refresh_token)
    assert_problem(response, 401, "invalid-token")
    assert response.headers["www-authenticate"] == "Bearer"
    assert await revoked_in_family(app, user.refresh_token) == 0  # expired, not reused
    assert_problem(await client.post(LOGOUT, json={"refresh_token": user.refresh_token}), 401)


async def test_a_replay_within_the_grace_spares_the_family(
    app: FastAPI, client: AsyncClient, users: UserFactory
) -> None:
    """A client that refreshed twice in a row (a retry): the late one loses, nothing else."""
    user = await users.create()
    winner = (await refresh(client, user.refresh_token)).json()["refresh_token"]
    assert_problem(await refresh(client, user.refresh_token), 401, "invalid-token")
    assert await revoked_in_family(app, winner) == 1
    assert (await refresh(client, winner)).status_code == 200


async def assert_one_winner(app: FastAPI, client: AsyncClient, responses: list[Response]) -> None:
    """One refresh won; the others are 401; the winner's family lives on."""
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [401] * (len(responses) - 1), [r.text for r in responses]
    winner = next(r for r in responses if r.status_code == 200).json()
    assert await revoked_in_family(app, winner["refresh_token"]) == 1
    me = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {winner['access_token']}"}
    )
    assert me.status_code == 200
    assert (await refresh(client, winner["refresh_token"])).status_code == 200


async def test_concurrent_refreshes_of_one_token_have_one_winner(
    app: FastAPI, client: AsyncClient, users: UserFactory
) -> None:
    user = await users.create()
    responses = await asyncio.gather(*(refresh(client, user.refresh_token) for _ in range(4)))
    await assert_one_winner(app, client, responses)


async def wait_for_lock_waiters(app: FastAPI, count: int) -> None:
    """Until `count` sessions of this database wait for a lock (10 s at most)."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + 10
    while True:
        async with app.state.engine.connect() as connection:
            if (await connection.execute(query)).scalar_one() >= count:
                return
        assert time.monotonic() < deadline, f"{count} requests never met at the row"
        await asyncio.sleep(0.01)


@pytest.mark.postgres
async def test_refreshes_queued_on_one_token_have_one_winner(
    app: FastAPI, client: AsyncClient, users: UserFactory
) -> None:
    """Truly at once: the requests all wait on the token's row, then race for it."""
    user = await users.create()
    digest = refresh_token_digest(user.refresh_token)
    async with app.state.engine.connect() as holder:
        lock = select(RefreshToken.id).where(RefreshToken.token_digest == digest)
        await holder.execute(lock.with_for_update())
        requests = [asyncio.create_task(refresh(client, user.refresh_token)) for _ in range(3)]
        await wait_for_lock_waiters(app, len(requests))
        await holder.rollback()
    await assert_one_winner(app, client, list(await asyncio.gather(*requests)))


async def test_logout_revokes_the_whole_family(
    app: FastAPI, client: AsyncClient, users: UserFactory
) -> None:
    user = await users.create()
    other_device = TestUser(id=user.id, email=user.email, password=user.password)
    await users.login(other_device)
    latest = (await refresh(client, user.refresh_token)).json()["refresh_token"]
    response = await client.post(LOGOUT, json={"refresh_token": latest})
    assert response.status_code == 204
    assert_problem(await refresh(client, latest), 401, "invalid-token")
    assert await revoked_in_family(app, latest) == 2
    assert (await refresh(client, other_device.refresh_token)).status_code == 200


async def test_logout_with_a_rotated_token_still_ends_the_family(
    app: FastAPI, client: AsyncClient, users: UserFactory
) -> None:
    user = await users.create()
    latest = (await refresh(client, user.refresh_token)).json()["refresh_token"]
    response = await client.post(LOGOUT, json={"refresh_token": user.refresh_token})
    assert_problem(response, 401, "invalid-token")
    assert_problem(await refresh(client, latest), 401, "invalid-token")


@pytest.mark.postgres
async def test_logout_during_a_refresh_of_the_same_token_ends_its_new_token(
    app: FastAPI, client: AsyncClient, users: UserFactory
) -> None:
    """Whichever gets the row first, the family is over once both have answered."""
    user = await users.create()
    digest = refresh_token_digest(user.refresh_token)
    async with app.state.engine.connect() as holder:
        lock = select(RefreshToken.id).where(RefreshToken.token_digest == digest)
        await holder.execute(lock.with_for_update())
        requests = [
            asyncio.create_task(refresh(client, user.refresh_token)),
            asyncio.create_task(client.post(LOGOUT, json={"refresh_token": user.refresh_token})),
        ]
        await wait_for_lock_waiters(app, len(requests))
        await holder.rollback()
    refreshed, _logout = await asyncio.gather(*requests)
    if refreshed.status_code == 200:
        assert_problem(await refresh(client, refreshed.json()["refresh_token"]), 401)
    async with app.state.engine.connect() as connection:
        live = (
            select(func.count())
            .select_from(RefreshToken)
            .where(col(RefreshToken.revoked_at).is_(None))
        )
        assert (await connection.execute(live)).scalar_one() == 0
