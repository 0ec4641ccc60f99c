"""Administrators cannot lock themselves out: the last active superuser stays one."""

import asyncio

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import func
from sqlmodel import col, select

from app.models.user import User
from tests.api.test_refresh_tokens import wait_for_lock_waiters
from tests.crud.formats import assert_problem
from tests.factories import TestUser, UserFactory

USERS = "/api/v1/users"


async def active_superusers(app: FastAPI) -> int:
    query = (
        select(func.count()).select_from(User).where(col(User.is_superuser), col(User.is_active))
    )
    async with app.state.engine.connect() as connection:
        return int((await connection.execute(query)).scalar_one())


async def remove(client: AsyncClient, how: str, target: TestUser, admin: TestUser) -> Response:
    url = f"{USERS}/{target.id}"
    if how == "delete":
        return await client.delete(url, headers=admin.headers)
    field = {"demote": "is_superuser", "deactivate": "is_active"}[how]
    return await client.patch(url, json={field: False}, headers=admin.headers)


HOW = ["delete", "demote", "deactivate"]


@pytest.mark.parametrize("how", HOW)
async def test_the_last_active_superuser_cannot_remove_themselves(
    app: FastAPI, client: AsyncClient, users: UserFactory, how: str
) -> None:
    admin = await users.create(superuser=True)
    body = assert_problem(await remove(client, how, admin, admin), 409, "last-superuser")
    assert "superuser" in body["detail"]
    assert await active_superusers(app) == 1
    me = await client.get(f"{USERS}/me", headers=admin.headers)
    assert me.status_code == 200 and me.json()["is_superuser"] and me.json()["is_active"]


@pytest.mark.parametrize("how", HOW)
async def test_a_superuser_can_go_while_another_stays(
    app: FastAPI, client: AsyncClient, users: UserFactory, how: str
) -> None:
    admin = await users.create(superuser=True)
    other = await users.create(superuser=True)
    response = await remove(client, how, other, admin)
    assert response.status_code in (200, 204), response.text
    assert await active_superusers(app) == 1
    # Now admin is the last one, even when another superuser is inactive.
    assert_problem(await remove(client, how, admin, admin), 409, "last-superuser")


async def test_an_inactive_superuser_does_not_count(
    app: FastAPI, client: AsyncClient, users: UserFactory
) -> None:
    admin = await users.create(superuser=True)
    dormant = await users.create(superuser=True)
    deactivate = {"is_active": False}
    response = await client.patch(f"{USERS}/{dormant.id}", json=deactivate, headers=admin.headers)
    assert response.status_code == 200
    assert_problem(await remove(client, "demote", admin, admin), 409, "last-superuser")
    # Removing the inactive one, or any other user, is fine.
    assert (await remove(client, "delete", dormant, admin)).status_code == 204
    user = await users.create()
    assert (await remove(client, "delete", user, admin)).status_code == 204
    assert await active_superusers(app) == 1


async def test_other_changes_to_the_last_superuser_are_allowed(
    client: AsyncClient, users: UserFactory
) -> None:
    admin = await users.create(superuser=True)
    unchanged = {"full_name": "Still in charge", "is_superuser": True, "is_active": True}
    response = await client.patch(f"{USERS}/{admin.id}", json=unchanged, headers=admin.headers)
    assert response.status_code == 200
    assert response.json()["full_name"] == "Still in charge"


@pytest.mark.parametrize("how", HOW)
async def test_two_superusers_removing_each_other_at_once_leave_one(
    app: FastAPI, client: AsyncClient, users: UserFactory, how: str
) -> None:
    first = await users.create(superuser=True)
    second = await users.create(superuser=True)
    responses = await asyncio.gather(
        remove(client, how, first, second), remove(client, how, second, first)
    )
    # One wins. The other is refused: 409, or 401/403 when the winner's change committed
    # before the loser's own token was checked.
    won = [response.is_success for response in responses]
    assert sorted(won) == [False, True], [r.text for r in responses]
    assert responses[won.index(False)].status_code in (401, 403, 409)
    assert await active_superusers(app) == 1


@pytest.mark.postgres
@pytest.mark.parametrize("how", HOW)
async def test_removals_that_meet_at_the_rows_leave_one_superuser(
    app: FastAPI, client: AsyncClient, users: UserFactory, how: str
) -> None:
    """Both requests pass their checks, then wait on the rows they change (held here), so
    each would count the other's target as still active without the superusers lock."""
    first = await users.create(superuser=True)
    second = await users.create(superuser=True)
    async with app.state.engine.connect() as holder:
        rows = select(User.id).where(col(User.id).in_([first.id, second.id]))
        await holder.execute(rows.with_for_update())
        requests = [
            asyncio.create_task(remove(client, how, first, second)),
            asyncio.create_task(remove(client, how, second, first)),
        ]
        await wait_for_lock_waiters(app, len(requests))
        await holder.rollback()
    responses = await asyncio.gather(*requests)
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [204 if how == "delete" else 200, 409], [r.text for r in responses]
    assert_problem(next(r for r in responses if r.status_code == 409), 409, "last-superuser")
    assert await active_superusers(app) == 1
