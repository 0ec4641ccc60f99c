"""The shipped nginx.conf (only upstream, port, pid and logs changed) in front of gunicorn.

Where a test must see exactly what nginx sends, or what nginx answers by itself, it stands in
front of a recording upstream instead; the TLS test enables TLS as an operator would.
"""

import gzip
import json
from collections.abc import Callable, Iterator
from itertools import cycle

import httpx
import pytest

from tests.deploy.conftest import Web
from tests.deploy.services import (
    SUPERUSER_EMAIL,
    SUPERUSER_PASSWORD,
    RecordingUpstream,
    free_port,
    login,
    recording_upstream,
    register,
    requires_nginx,
    running_nginx,
    substitute,
    unique_email,
)

pytestmark = [pytest.mark.postgres, requires_nginx]

MAX_BODY_BYTES = 1024 * 1024
TIMEOUT = 30
SECURITY_HEADERS = ("X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options")
HSTS = "max-age=31536000; includeSubDomains"
BCRYPT_REQUESTS = [
    ("POST", "/api/v1/auth/register"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/users/me/password"),
    ("PATCH", "/api/v1/users/me"),  # an email change needs the current password
]


@pytest.fixture(scope="module")
def nginx_url(web: Web) -> Iterator[str]:
    with running_nginx(web.port) as (_nginx, port):
        yield f"http://127.0.0.1:{port}"


def client_from(address: str) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=TIMEOUT)


@pytest.fixture(scope="module")
def upstream() -> Iterator[RecordingUpstream]:
    with recording_upstream() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=TIMEOUT) as client:
        yield client


def assert_problem(response: httpx.Response, status: int, slug: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["type"] == f"/problems/{slug}"
    assert body["title"] and body["detail"]


def test_requests_reach_the_app_with_one_header_each(
    web: Web, nginx_url: str, http: httpx.Client
) -> None:
    response = http.get(f"{nginx_url}/health/ready", headers={"X-Request-ID": "via-nginx"})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "via-nginx"
    for name in (*SECURITY_HEADERS, "X-Request-ID"):
        assert len(response.headers.get_list(name)) == 1, name
    assert web.service.access_line("via-nginx")["path"] == "/health/ready"

    # Without one, nginx makes the request id, and the app keeps it.
    generated = http.get(f"{nginx_url}/health").headers["X-Request-ID"]
    assert len(generated) == 32
    assert web.service.access_line(generated)["status"] == 200


def test_client_address_and_scheme_come_from_the_edge(web: Web, nginx_url: str) -> None:
    forged = {
        "X-Forwarded-For": "198.51.100.7",
        "X-Forwarded-Proto": "https",
        "X-Request-ID": "forged-headers",
    }
    with client_from("127.0.0.5") as client:
        response = client.post(
            f"{nginx_url}/api/v1/auth/register",
            json={"email": unique_email("edge"), "password": "correct-horse-battery"},
            headers=forged,
        )
    assert response.status_code == 201
    # End to end only: uvicorn would find this address in an appended list too (the exact
    # header is test_upstream_gets_the_peer_alone_as_x_forwarded_for's).
    assert web.service.access_line("forged-headers")["client"] == "127.0.0.5"
    # The scheme nginx saw and the host and port the client used.
    user_id = response.json()["id"]
    assert response.headers["Location"] == f"{nginx_url}/api/v1/users/{user_id}"


def test_upstream_gets_the_peer_alone_as_x_forwarded_for(upstream: RecordingUpstream) -> None:
    def send(request_id: str, edit: Callable[[str], str] | None = None) -> None:
        forged = {"X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": "https"}
        with (
            running_nginx(upstream.port, edit=edit) as (_nginx, port),
            client_from("127.0.0.5") as client,
        ):
            response = client.get(
                f"http://127.0.0.1:{port}/health", headers={**forged, "X-Request-ID": request_id}
            )
        assert response.status_code == 200

    send("xff-shipped")
    received = upstream.received("xff-shipped")
    assert received.get_all("X-Forwarded-For") == ["127.0.0.5"]
    assert received.get_all("X-Forwarded-Proto") == ["http"]

    # The recorder sees what nginx sends: appending to the client's list would show here.
    def appending(text: str) -> str:
        pattern = r"X-Forwarded-For \$remote_addr;"
        return substitute(text, pattern, "X-Forwarded-For $proxy_add_x_forwarded_for;")

    send("xff-appended", edit=appending)
    assert upstream.received("xff-appended").get_all("X-Forwarded-For") == ["1.2.3.4, 127.0.0.5"]


def test_body_over_limit_gets_413(web: Web, nginx_url: str, http: httpx.Client) -> None:
    too_big = http.post(
        f"{nginx_url}/api/v1/auth/register",
        content=b"x" * (MAX_BODY_BYTES + 1),
        headers={"Content-Type": "application/json", "X-Request-ID": "too-big"},
    )
    assert_problem(too_big, 413, "payload-too-large")
    assert too_big.headers["X-Request-ID"] == "too-big"
    assert not [line for line in web.service.access_lines() if line["request_id"] == "too-big"]

    # Exactly the limit passes nginx: the app answers (the body is not valid JSON).
    at_limit = http.post(
        f"{nginx_url}/api/v1/auth/register",
        content=b"x" * MAX_BODY_BYTES,
        headers={"Content-Type": "application/json", "X-Request-ID": "at-limit"},
    )
    assert_problem(at_limit, 422, "validation-error")
    assert web.service.access_line("at-limit")["status"] == 422


def test_login_burst_gets_429(web: Web, nginx_url: str) -> None:
    def attempt(client: httpx.Client, request_id: str) -> httpx.Response:
        return client.post(
            f"{nginx_url}/api/v1/auth/login",
            data={"username": unique_email("burst"), "password": "wrong-password"},
            headers={"X-Request-ID": request_id},
        )

    request_ids = [f"burst-{i}" for i in range(12)]
    with client_from("127.0.0.6") as client:
        responses = [attempt(client, request_id) for request_id in request_ids]

    # One at the rate plus the burst of 5 reach the app (which may throttle on its own too)...
    for request_id in request_ids[:6]:
        web.service.access_line(request_id)
    # ...and nginx turns the rest away itself.
    reached = {line["request_id"] for line in web.service.access_lines()}
    assert request_ids[-1] not in reached
    for request_id, response in zip(request_ids, responses, strict=True):
        if request_id not in reached:
            assert_problem(response, 429, "too-many-requests")
            assert int(response.headers["Retry-After"]) > 0
            assert response.headers["X-Request-ID"] == request_id

    # Another address has its own allowance.
    with client_from("127.0.0.7") as client:
        attempt(client, "burst-other-address")
    web.service.access_line("burst-other-address")


def test_bcrypt_endpoints_share_one_allowance_per_address(upstream: RecordingUpstream) -> None:
    with running_nginx(upstream.port) as (_nginx, port):
        base_url = f"http://127.0.0.1:{port}"
        request_ids = [f"bcrypt-{i}" for i in range(9)]
        with client_from("127.0.0.8") as client:
            responses = [
                client.request(method, f"{base_url}{path}", headers={"X-Request-ID": request_id})
                for request_id, (method, path) in zip(request_ids, cycle(BCRYPT_REQUESTS))
            ]
            # The same address elsewhere, or another method (a CORS preflight, a read): not counted.
            health = client.get(f"{base_url}/health")
            preflight = client.options(f"{base_url}/api/v1/auth/register")
            me = client.get(f"{base_url}/api/v1/users/me")
        with client_from("127.0.0.9") as client:
            other_address = client.post(f"{base_url}/api/v1/auth/register")

    # One at the rate plus the burst of 5 reach the upstream, over the four routes together...
    assert [upstream.got(request_id) for request_id in request_ids] == [True] * 6 + [False] * 3
    assert [response.status_code for response in responses[:6]] == [200] * 6
    # ...and nginx turns the rest away itself.
    for request_id, response in zip(request_ids[6:], responses[6:], strict=True):
        assert_problem(response, 429, "too-many-requests")
        assert int(response.headers["Retry-After"]) > 0
        assert response.headers["X-Request-ID"] == request_id
    assert health.status_code == 200
    assert preflight.status_code == 200
    assert me.status_code == 200
    assert other_address.status_code == 200


def proxied_and_refused(client: httpx.Client) -> list[httpx.Response]:
    """A response from the upstream, and one of nginx's own errors."""
    proxied = client.get("/health", headers={"X-Request-ID": f"{client.base_url.scheme}-health"})
    assert proxied.status_code == 200
    refused = client.post("/api/v1/auth/register", content=b"x" * (MAX_BODY_BYTES + 1))
    assert_problem(refused, 413, "payload-too-large")
    return [proxied, refused]


def test_tls_variant_sends_hsts_and_plain_http_does_not(upstream: RecordingUpstream) -> None:
    with (
        running_nginx(upstream.port, tls=True) as (_nginx, port),
        # The test's self-signed certificate: what is checked here is the headers, not the chain.
        httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=False, timeout=TIMEOUT) as client,
    ):
        over_tls = proxied_and_refused(client)
    with (
        running_nginx(upstream.port) as (_nginx, port),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=TIMEOUT) as client,
    ):
        plain = proxied_and_refused(client)

    assert upstream.received("https-health").get_all("X-Forwarded-Proto") == ["https"]
    for response in over_tls:
        assert response.headers.get_list("Strict-Transport-Security") == [HSTS]
    for response in plain:
        assert "Strict-Transport-Security" not in response.headers


def test_large_json_lists_are_gzipped(web: Web, nginx_url: str, http: httpx.Client) -> None:
    for _ in range(15):
        assert register(web.base_url, unique_email("gzip")).status_code == 201
    token = login(web.base_url, SUPERUSER_EMAIL, SUPERUSER_PASSWORD).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"}

    with http.stream(
        "GET", f"{nginx_url}/api/v1/users?limit=100", headers=headers, timeout=30
    ) as response:
        raw = b"".join(response.iter_raw())
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in response.headers["Vary"]
    body = gzip.decompress(raw)
    assert len(raw) < len(body)
    assert len(json.loads(body)["items"]) >= 16

    small = http.get(f"{nginx_url}/health", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in small.headers


def test_app_down_gets_502_problem(http: httpx.Client) -> None:
    with running_nginx(free_port()) as (_nginx, port):
        response = http.get(f"http://127.0.0.1:{port}/health", headers={"X-Request-ID": "down"})
    assert_problem(response, 502, "bad-gateway")
    assert response.headers["X-Request-ID"] == "down"


def test_bulk_writes_pass_with_their_bodies(web: Web, nginx_url: str, http: httpx.Client) -> None:
    """Delete-many is a DELETE with a JSON body: nginx passes it to the app."""
    email = unique_email("bulk")
    assert register(web.base_url, email).status_code == 201
    token = login(web.base_url, email).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{nginx_url}/api/v1/posts/batch"
    created = http.post(url, json=[{"title": "One"}, {"title": "Two"}], headers=headers)
    assert created.status_code == 201, created.text
    ids = [item["data"]["id"] for item in created.json()["items"]]
    deleted = http.request("DELETE", url, json=ids, headers=headers)
    assert deleted.status_code == 204, deleted.text
    for post_id in ids:
        assert http.get(f"{nginx_url}/api/v1/posts/{post_id}").status_code == 404
