"""Logs: one JSON access line per request on stdout, and no secrets anywhere in the output."""

import uuid
from collections.abc import Callable

import httpx
import pytest

from tests.deploy.conftest import Web
from tests.deploy.services import login, register, unique_email

pytestmark = pytest.mark.postgres

SECRET_PASSWORD = "Sup3r-Secret-Passw0rd!"


def test_one_json_line_per_request_without_secrets(web: Web) -> None:
    tag = uuid.uuid4().hex[:12]
    email = f"logs-{tag}@example.com"
    registered = httpx.post(
        f"{web.base_url}/api/v1/auth/register",
        json={"email": email, "password": SECRET_PASSWORD},
        headers={"X-Request-ID": f"register-{tag}"},
        timeout=30,
    )
    assert registered.status_code == 201
    tokens = login(
        web.base_url, email, SECRET_PASSWORD, headers={"X-Request-ID": f"login-{tag}"}
    ).json()
    me = httpx.get(
        f"{web.base_url}/api/v1/users/me?page=1",
        headers={"Authorization": f"Bearer {tokens['access_token']}", "X-Request-ID": f"me-{tag}"},
        timeout=10,
    )
    assert me.status_code == 200
    assert me.headers["X-Request-ID"] == f"me-{tag}"

    line = web.service.access_line(f"me-{tag}")
    assert line["method"] == "GET"
    assert line["path"] == "/api/v1/users/me"
    assert line["status"] == 200
    assert line["user_id"] == registered.json()["id"]
    assert isinstance(line["latency_ms"], float)
    assert web.service.access_line(f"login-{tag}")["status"] == 200
    assert web.service.access_line(f"register-{tag}")["status"] == 201

    output = web.service.stdout() + web.service.stderr()
    for secret in (SECRET_PASSWORD, tokens["access_token"], tokens["refresh_token"]):
        assert secret not in output
    # uvicorn's own access log stays off: the app's line is the only one.
    assert '"GET /api/v1/users/me' not in output


def test_log_level_is_honoured(start_web: Callable[..., Web]) -> None:
    web = start_web(LOG_LEVEL="WARNING")
    response = register(web.base_url, unique_email("quiet"), headers={"X-Request-ID": "quiet"})
    assert response.status_code == 201
    assert '"quiet"' not in web.service.stdout()
    assert "Booting worker" not in web.service.stderr()
