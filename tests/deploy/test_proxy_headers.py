"""X-Forwarded-Proto/For are honoured from trusted proxies only (FORWARDED_ALLOW_IPS).

Every 127.0.0.0/8 address is this machine: a client bound to 127.0.0.2 plays an untrusted
peer, since only 127.0.0.1 is trusted by default. Behind a platform's router, which every
request comes from, the documented Heroku recipe decides which address the throttle counts.
"""

import random
import re
import shlex
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.deploy.conftest import Web
from tests.deploy.services import (
    PASSWORD,
    ROOT,
    SUPERUSER_EMAIL,
    SUPERUSER_PASSWORD,
    app_env,
    command,
    free_port,
    login,
    port_open,
    running,
    unique_email,
)

pytestmark = pytest.mark.postgres

FORWARDED = {"Host": "api.example.com", "X-Forwarded-Proto": "https"}


def heroku_config() -> dict[str, str]:
    """The variables docs/deploy.md's Heroku recipe sets (`heroku config:set ...`)."""
    text = (ROOT / "docs" / "deploy.md").read_text().replace("\\\n", " ")
    [line] = re.findall(r"^heroku config:set .*$", text, flags=re.MULTILINE)
    words = shlex.split(line)[2:]
    return dict(word.split("=", 1) for word in words if "=" in word)


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
    spec = httpx.get(f"{web.base_url}/openapi.json", headers=FORWARDED, timeout=10).json()
    assert spec["servers"] == [{"url": "https://api.example.com"}]


def test_untrusted_peer_cannot_forge_them(web: Web) -> None:
    response = register_from(web, "127.0.0.2", "untrusted-peer", "203.0.113.9")
    assert response.status_code == 201
    assert response.headers["Location"].startswith("http://api.example.com/api/v1/users/")
    assert web.service.access_line("untrusted-peer")["client"] == "127.0.0.2"
    with client_from("127.0.0.2") as client:
        spec = client.get(f"{web.base_url}/openapi.json", headers=FORWARDED).json()
    assert spec["servers"] == [{"url": "http://api.example.com"}]


def test_the_heroku_recipe_counts_the_address_the_router_appended(
    start_web: Callable[..., Web],
) -> None:
    """20 logins from one peer (the router), each with a forged X-Forwarded-For prefix."""
    config = heroku_config()
    recipe = {
        name: config[name] for name in ("FORWARDED_ALLOW_IPS", "PROXY_HOPS") if name in config
    }
    web = start_web(**recipe, LOGIN_MAX_FAILURES="5", LOGIN_WINDOW_SECONDS="600")
    rng = random.Random()
    real = f"198.18.{rng.randint(0, 255)}.{rng.randint(1, 254)}"  # what the router appended
    statuses = []
    with client_from("127.0.0.1") as router:
        for attempt in range(20):
            forged = ", ".join(
                f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.1"
                for _ in range(rng.randint(1, 3))
            )
            response = router.post(
                f"{web.base_url}/api/v1/auth/login",
                data={"username": unique_email(f"spray{attempt}"), "password": "wrong-password"},
                headers={"X-Forwarded-For": f"{forged}, {real}"},
            )
            statuses.append(response.status_code)
    assert statuses == [401] * 5 + [429] * 15


def test_web_refuses_to_trust_every_proxy_without_proxy_hops(
    database_url: str, tmp_path: Path
) -> None:
    """The recipe's FORWARDED_ALLOW_IPS='*' without its PROXY_HOPS=1: the web never serves."""
    port = free_port()
    env = app_env(database_url, PORT=str(port), FORWARDED_ALLOW_IPS="*")
    env.pop("PROXY_HOPS", None)
    answered = False
    with running(command("web"), env, tmp_path, "web-star") as web:
        deadline = time.monotonic() + 30
        while web.process.poll() is None and time.monotonic() < deadline:
            answered = answered or port_open(port)
            time.sleep(0.05)
        returncode = web.wait(timeout=1)
    assert returncode != 0
    assert not answered
    stderr = " ".join(web.stderr().split())
    assert "Invalid configuration" in stderr, web.describe()
    assert "FORWARDED_ALLOW_IPS='*' needs PROXY_HOPS" in stderr
    assert "any client could choose the address the login throttle counts" in stderr
    assert "Traceback" not in stderr
