"""Token attacks that tests/api/test_tokens.py and test_auth.py leave out (API2).

Future `iat`/`nbf`, and an access token offered where a refresh token belongs: each is a 401
problem with `WWW-Authenticate: Bearer`.
"""

import math
import time
from datetime import UTC, datetime, timedelta

import pytest
from httpx import AsyncClient, Response

from tests.api.test_tokens import assert_rejected, claims_for, sign
from tests.crud.formats import assert_problem
from tests.factories import UserFactory

ME = "/api/v1/users/me"


def assert_bearer_401(response: Response) -> None:
    assert_problem(response, 401, "invalid-token")
    assert response.headers["www-authenticate"] == "Bearer"


def seconds_ahead(seconds: int) -> datetime:
    """At least `seconds` from now, in whole seconds (JWT times are; PyJWT rounds them down).

    `now + 1 s` rounded down could be a mere instant ahead, and past by the time it is checked.
    """
    return datetime.fromtimestamp(math.ceil(time.time()) + seconds, UTC)


@pytest.mark.parametrize("seconds", [1, 31, 3600, 3650 * 86400])
async def test_iat_in_the_future_is_refused(
    client: AsyncClient, users: UserFactory, seconds: int
) -> None:
    """No leeway: a token issued even 1 s in the future is refused."""
    user = await users.create(login=False)
    issued = seconds_ahead(seconds)
    claims = claims_for(user.id, iat=issued, exp=issued + timedelta(minutes=5))
    await assert_rejected(client, sign(claims))


@pytest.mark.parametrize("seconds", [1, 31, 3600])
async def test_nbf_in_the_future_is_refused(
    client: AsyncClient, users: UserFactory, seconds: int
) -> None:
    user = await users.create(login=False)
    await assert_rejected(client, sign(claims_for(user.id, nbf=seconds_ahead(seconds))))


async def test_exp_just_past_is_refused(client: AsyncClient, users: UserFactory) -> None:
    """No leeway the other way either: a token that expired a second ago is refused."""
    user = await users.create(login=False)
    expired = datetime.fromtimestamp(math.floor(time.time()) - 1, UTC)
    claims = claims_for(user.id, iat=expired - timedelta(minutes=5), exp=expired)
    await assert_rejected(client, sign(claims))


async def test_nbf_in_the_past_is_accepted(client: AsyncClient, users: UserFactory) -> None:
    """The control for the test above: `nbf` itself is allowed."""
    user = await users.create(login=False)
    token = sign(claims_for(user.id, nbf=datetime.now(UTC) - timedelta(seconds=5)))
    response = await client.get(ME, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


@pytest.mark.parametrize("route", ["refresh", "logout"])
async def test_access_token_used_as_refresh_token(
    client: AsyncClient, users: UserFactory, route: str
) -> None:
    user = await users.create()
    response = await client.post(f"/api/v1/auth/{route}", json={"refresh_token": user.access_token})
    assert_bearer_401(response)
    # The real refresh token is untouched by the attempt.
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": user.refresh_token}
    )
    assert refreshed.status_code == 200


async def test_a_rotated_refresh_token_cannot_log_out_either(
    client: AsyncClient, users: UserFactory
) -> None:
    user = await users.create()
    rotated = await client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    assert rotated.status_code == 200
    for route in ("refresh", "logout"):
        replay = await client.post(
            f"/api/v1/auth/{route}", json={"refresh_token": user.refresh_token}
        )
        assert_bearer_401(replay)
