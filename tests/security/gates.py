"""App instances with production throttle limits, and callers at chosen addresses.

The ASGI transport sets the connection's peer, so a test can play callers at different
addresses, or a router that forwards them (tests/conftest.py raises the limits for the rest
of the suite).
"""

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy import select, update
from starlette.types import ASGIApp

from app.core.config import get_settings
from app.main import create_app
from app.models.login_throttle import LoginFailure
from tests.crud.formats import assert_problem

LOGIN = "/api/v1/auth/login"
LIMIT = 5
WINDOW = 60
PEER = "198.51.100.1"
_unknown = itertools.count()

Headers = Sequence[tuple[str, str]]


@dataclass
class Gate:
    """One app instance (one worker), reached by callers at chosen addresses."""

    app: ASGIApp

    async def request(
        self, method: str, url: str, *, peer: str = PEER, headers: Headers = (), **kwargs: Any
    ) -> Response:
        transport = ASGITransport(app=self.app, client=(peer, 50000))
        async with AsyncClient(transport=transport, base_url="http://testserver") as http:
            return await http.request(method, url, headers=list(headers), **kwargs)

    async def login(
        self, email: str, password: str, *, peer: str = PEER, headers: Headers = ()
    ) -> Response:
        data = {"username": email, "password": password}
        return await self.request("POST", LOGIN, peer=peer, headers=headers, data=data)

    async def fail(self, email: str, **kwargs: Any) -> None:
        response = await self.login(email, "wrong-password", **kwargs)
        assert response.status_code == 401, response.text


Build = Callable[..., Awaitable[Gate]]


@asynccontextmanager
async def gates() -> AsyncIterator[Build]:
    """Apps with the production limits (or `overrides`), sharing the test database.

    `wrap` puts middleware in front, as a server would (uvicorn's proxy headers).
    """
    async with AsyncExitStack() as stack:

        async def start(wrap: Callable[[ASGIApp], ASGIApp] | None = None, **overrides: Any) -> Gate:
            limits = {
                "LOGIN_MAX_FAILURES": LIMIT,
                "LOGIN_WINDOW_SECONDS": WINDOW,
                "REGISTER_MAX_PER_WINDOW": 10,
                "REGISTER_WINDOW_SECONDS": 3600,
            }
            settings = get_settings().model_copy(update={**limits, **overrides})
            application = create_app(settings)
            await stack.enter_async_context(LifespanManager(application))
            return Gate(wrap(application) if wrap else application)

        yield start


def unknown_email() -> str:
    return f"nobody{next(_unknown)}@example.com"


def assert_locked(
    response: Response, window: int = WINDOW, slug: str = "too-many-login-attempts"
) -> int:
    """429 problem with `Retry-After` in whole seconds within the window; returns it."""
    assert_problem(response, 429, slug)
    assert "access_token" not in response.text
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= window
    return retry_after


async def age_attempts(app: FastAPI, seconds: float) -> None:
    """Move every counted attempt `seconds` into the past: the clock, without waiting for it."""
    async with app.state.engine.begin() as connection:
        rows = (await connection.execute(select(LoginFailure.id, LoginFailure.failed_at))).all()
        for row_id, failed_at in rows:
            earlier = failed_at - timedelta(seconds=seconds)
            await connection.execute(
                update(LoginFailure).where(LoginFailure.id == row_id).values(failed_at=earlier)
            )
