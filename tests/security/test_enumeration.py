"""Account enumeration (API2): a login for an unknown email costs as much as for a real one.

The response is the same 401 either way (tests/api/test_auth.py); this checks the time it
takes, through the bcrypt cost of the hash each attempt checks. At production cost a check
takes hundreds of milliseconds, so a cheaper dummy hash would tell unknown emails apart.
"""

from collections.abc import Callable

import bcrypt
import pytest
from fastapi import FastAPI

from app.core.config import get_settings
from app.main import create_app
from tests.conftest import Serve

LOGIN = "/api/v1/auth/login"
REGISTER = "/api/v1/auth/register"
ROUNDS = 6  # not the suite's 4, so a fixed dummy cost shows


@pytest.fixture
def checked_costs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The bcrypt cost of every hash a password is checked against."""
    costs: list[int] = []
    real: Callable[[bytes, bytes], bool] = bcrypt.checkpw

    def spy(password: bytes, hashed: bytes) -> bool:
        costs.append(int(hashed.split(b"$")[2]))
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", spy)
    return costs


async def test_unknown_and_known_emails_cost_the_same_check(
    app: FastAPI, serve: Serve, checked_costs: list[int]
) -> None:
    client = await serve(create_app(get_settings().model_copy(update={"BCRYPT_ROUNDS": ROUNDS})))
    account = {"email": "known@example.com", "password": "correct-horse-battery"}
    assert (await client.post(REGISTER, json=account)).status_code == 201
    attempts = [
        {"username": "known@example.com", "password": "wrong-password"},
        {"username": "unknown@example.com", "password": "wrong-password"},
        {"username": "unknown@example.com", "password": "x" * 100},
    ]
    for attempt in attempts:
        assert (await client.post(LOGIN, data=attempt)).status_code == 401
    assert checked_costs == [ROUNDS] * len(attempts)
