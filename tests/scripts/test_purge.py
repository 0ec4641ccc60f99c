from datetime import timedelta

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, insert, select, update
from sqlmodel import col

from app.core.db import utcnow
from app.crud.idempotency import IdempotencyKey
from app.models.login_throttle import LoginFailure
from app.models.user import RefreshToken
from scripts.purge import purge
from tests.api.test_refresh_tokens import rotated_long_ago, set_times
from tests.factories import UserFactory


async def count(app: FastAPI, table: type) -> int:
    async with app.state.engine.connect() as connection:
        return (await connection.execute(select(func.count()).select_from(table))).scalar_one()


async def test_purge_deletes_only_expired_rows(
    app: FastAPI, client: AsyncClient, users: UserFactory
) -> None:
    user = await users.create()  # one live refresh token
    stale = await users.create()  # logged out: revoked, kept until its family ends
    await client.post("/api/v1/auth/logout", json={"refresh_token": stale.refresh_token})
    headers = {**user.headers, "Idempotency-Key": "fresh"}
    assert (await client.post("/api/v1/posts", json={"title": "t"}, headers=headers)).is_success
    expired = await users.create()
    old = utcnow() - timedelta(days=2)
    async with app.state.engine.begin() as connection:
        await connection.execute(
            insert(IdempotencyKey).values(
                user_id=user.id,
                key="old",
                request_hash="x",
                status_code=201,
                headers="{}",
                body="{}",
                created_at=old,
            )
        )
        await connection.execute(
            insert(LoginFailure).values(
                [
                    {"key": "ip:1.2.3.4", "failed_at": old},
                    {"key": "ip:1.2.3.4", "failed_at": utcnow()},
                    # A sign-up five minutes ago still counts (its window is an hour).
                    {"key": "register-ip:1.2.3.4", "failed_at": utcnow() - timedelta(minutes=5)},
                ]
            )
        )
        await connection.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id == expired.id)
            .values(expires_at=utcnow() - timedelta(seconds=1))  # expired unused
        )
    ended = await users.create()  # a family that has ended: a revoked row and a live one
    await client.post("/api/v1/auth/refresh", json={"refresh_token": ended.refresh_token})
    await set_times(
        app, ended.refresh_token, family=True, family_expires_at=utcnow() - timedelta(seconds=1)
    )

    deleted = await purge()

    assert deleted == {
        "refresh_tokens": 3,
        "idempotency_keys": 1,
        "login_failures": 1,
        "sync_tombstones": 0,  # tests/crud/test_sync.py deletes some
    }
    assert await count(app, RefreshToken) == 2
    assert await count(app, IdempotencyKey) == 1
    async with app.state.engine.connect() as connection:
        kept = await connection.execute(
            select(LoginFailure.key).where(col(LoginFailure.key).like("%1.2.3.4"))
        )
        assert sorted(kept.scalars()) == ["ip:1.2.3.4", "register-ip:1.2.3.4"]
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": user.refresh_token}
    )
    assert refreshed.status_code == 200


async def test_purge_keeps_rotated_tokens_so_a_replay_is_still_caught(
    app: FastAPI, client: AsyncClient, users: UserFactory
) -> None:
    user = await users.create()
    rotated = await client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    latest = rotated.json()["refresh_token"]

    assert (await purge())["refresh_tokens"] == 0

    await rotated_long_ago(app, user.refresh_token)
    replay = await client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    assert replay.status_code == 401
    refreshed = await client.post("/api/v1/auth/refresh", json={"refresh_token": latest})
    assert refreshed.status_code == 401
