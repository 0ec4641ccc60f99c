"""App-wide behaviour: request ids, security headers, CORS, health checks."""

import uuid

import pytest
from fastapi import Response
from httpx import AsyncClient

from app.core.config import Settings
from app.main import create_app
from tests.conftest import Serve
from tests.factories import UserFactory

ORIGIN = "https://app.example.com"


def assert_uuid4(value: str) -> None:
    assert uuid.UUID(value).version == 4
    assert str(uuid.UUID(value)) == value


@pytest.mark.parametrize("request_id", ["abc", "Req-1.2_3", "x" * 128])
async def test_valid_request_id_is_echoed(client: AsyncClient, request_id: str) -> None:
    response = await client.get("/health", headers={"X-Request-ID": request_id})
    assert response.headers["x-request-id"] == request_id


@pytest.mark.parametrize("request_id", ["", "has space", "semi;colon", "x" * 129, "é"])
async def test_invalid_request_id_is_replaced(client: AsyncClient, request_id: str) -> None:
    response = await client.get(
        "/health", headers=[("X-Request-ID", request_id.encode())] if request_id else {}
    )
    assert response.headers["x-request-id"] != request_id
    assert_uuid4(response.headers["x-request-id"])


async def test_each_request_gets_its_own_id(client: AsyncClient) -> None:
    first = await client.get("/nowhere")
    second = await client.get("/nowhere")
    assert_uuid4(first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


@pytest.mark.parametrize(("method", "path"), [("GET", "/health"), ("GET", "/nowhere")])
async def test_security_headers(client: AsyncClient, method: str, path: str) -> None:
    response = await client.request(method, path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"


async def test_no_store_only_with_authorization(client: AsyncClient, users: UserFactory) -> None:
    user = await users.create()
    anonymous = await client.get("/health")
    assert "cache-control" not in anonymous.headers
    authorised = await client.get("/api/v1/users/me", headers=user.headers)
    assert authorised.status_code == 200
    assert authorised.headers["cache-control"] == "no-store"
    rejected = await client.get("/api/v1/users/me", headers={"Authorization": "Bearer nope"})
    assert rejected.status_code == 401
    assert rejected.headers["cache-control"] == "no-store"


async def test_no_server_header(client: AsyncClient, serve: Serve) -> None:
    assert "server" not in (await client.get("/health")).headers
    application = create_app()

    @application.get("/chatty")
    async def chatty(response: Response) -> dict[str, str]:
        response.headers["Server"] = "framework/1.2.3"
        return {}

    response = await (await serve(application)).get("/chatty")
    assert response.status_code == 200
    assert "server" not in response.headers


async def test_cors_preflight_allows_the_contract_headers(serve: Serve) -> None:
    client = await serve(create_app(Settings(CORS_ORIGINS=f"{ORIGIN}, https://other.example")))
    requested = (
        "authorization, content-type, range, if-match, if-none-match, idempotency-key, x-request-id"
    )
    response = await client.options(
        "/api/v1/users/me",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": requested,
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "PATCH" in response.headers["access-control-allow-methods"]
    allowed = {
        h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
    }
    assert set(requested.split(", ")) <= allowed
    assert response.headers["access-control-max-age"] == "3600"  # browsers cache the answer


async def test_cors_exposes_the_contract_headers(serve: Serve) -> None:
    client = await serve(create_app(Settings(CORS_ORIGINS=ORIGIN)))
    response = await client.get("/health", headers={"Origin": ORIGIN})
    assert response.headers["access-control-allow-origin"] == ORIGIN
    exposed = {h.strip() for h in response.headers["access-control-expose-headers"].split(",")}
    assert exposed == {
        "ETag",
        "Location",
        "Link",
        "X-Total-Count",
        "Content-Range",
        "X-Request-ID",
        "Retry-After",
    }


async def test_cors_refuses_other_origins(serve: Serve) -> None:
    client = await serve(create_app(Settings(CORS_ORIGINS=ORIGIN)))
    response = await client.options(
        "/api/v1/users/me",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers
    simple = await client.get("/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


async def test_cors_wildcard_never_allows_credentials(serve: Serve) -> None:
    client = await serve(create_app(Settings(CORS_ORIGINS="*")))
    response = await client.get("/health", headers={"Origin": ORIGIN})
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers


async def test_no_cors_without_origins(client: AsyncClient) -> None:
    response = await client.get("/health", headers={"Origin": ORIGIN})
    assert "access-control-allow-origin" not in response.headers


async def test_health(client: AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_when_the_database_answers(client: AsyncClient) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_not_ready_when_the_database_is_unreachable(serve: Serve) -> None:
    settings = Settings(DATABASE_URL="postgresql://postgres@127.0.0.1:1/unreachable")
    client = await serve(create_app(settings))
    response = await client.get("/health/ready")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5"
    assert response.json()["type"] == "/problems/service-unavailable"
    assert (await client.get("/health")).status_code == 200
