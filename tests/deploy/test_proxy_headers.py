"""X-Forwarded-Proto/For are honoured from trusted proxies only (FORWARDED_ALLOW_IPS).

Every 127.0.0.0/8 address is this machine: a client bound to 127.0.0.2 plays an untrusted
peer, since only 127.0.0.1 is trusted by default.
"""

import httpx
import pytest

from tests.deploy.conftest import Web
from tests.deploy.services import (
    PASSWORD,
    SUPERUSER_EMAIL,
    SUPERUSER_PASSWORD,
    login,
    unique_email,
)

pytestmark = pytest.mark.postgres

FORWARDED = {"Host": "api.example.com", "X-Forwarded-Proto": "https"}


def client_from(address: str) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30)


def register_from(web: Web, address: str, request_id: str, forwarded_for: str) -> httpx.Response:
    with client_from(address) as client:
        return client.post(
            f"{web.base_url}/api/v1/auth/register",
            json={"email": unique_email("proxy"), "password": PASSWORD},
            headers={**FORWARDED, "X-Forwarded-For": forwarded_for, "X-Request-ID": request_id},
        )


def test_trusted_proxy_sets_scheme_host_and_client(web: Web) -> None:
    response = register_from(web, "127.0.0.1", "trusted-proxy", "203.0.113.9")
    assert response.status_code == 201
    user_id = response.json()["id"]
    assert response.headers["Location"] == f"https://api.example.com/api/v1/users/{user_id}"
    assert web.service.access_line("trusted-proxy")["client"] == "203.0.113.9"

    token = login(web.base_url, SUPERUSER_EMAIL, SUPERUSER_PASSWORD).json()["access_token"]
    page = httpx.get(
        f"{web.base_url}/api/v1/users?limit=1",
        headers={**FORWARDED, "Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert page.status_code == 200
    assert page.headers["Link"].startswith("<https://api.example.com/api/v1/users?")
    assert 'rel="next"' in page.headers["Link"]


def test_untrusted_peer_cannot_forge_them(web: Web) -> None:
    response = register_from(web, "127.0.0.2", "untrusted-peer", "203.0.113.9")
    assert response.status_code == 201
    assert response.headers["Location"].startswith("http://api.example.com/api/v1/users/")
    assert web.service.access_line("untrusted-peer")["client"] == "127.0.0.2"
