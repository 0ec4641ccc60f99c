import json
import re
from typing import Any

import pytest
from httpx import AsyncClient
from openapi_spec_validator import validate

OPERATION_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)+$")
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
ASSET_ATTRIBUTE = re.compile(r"""\b(?:src|href|spec-url)\s*=\s*["']([^"']+)["']""")


@pytest.fixture
async def spec(client: AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def test_spec_is_valid(spec: dict[str, Any]) -> None:
    validate(spec)


def test_operation_ids_are_unique_kebab_case_and_start_with_the_tag(spec: dict[str, Any]) -> None:
    ids = [operation.get("operationId") for _, _, operation in operations(spec)]
    assert len(ids) == len(set(ids))
    for method, path, operation in operations(spec):
        operation_id = operation["operationId"]
        assert OPERATION_ID.match(operation_id), (method, path, operation_id)
        assert operation_id.startswith(operation["tags"][0] + "-"), (method, path, operation_id)


def test_documented_operations(spec: dict[str, Any]) -> None:
    ids = {operation["operationId"] for _, _, operation in operations(spec)}
    assert {
        "health-live",
        "health-ready",
        "auth-register",
        "auth-login",
        "auth-refresh",
        "auth-logout",
        "users-read-me",
        "users-update-me",
        "users-change-password",
        "users-list",
        "users-read",
        "users-update",
        "users-delete",
    } <= ids


def test_errors_are_documented_as_problems(spec: dict[str, Any]) -> None:
    me = spec["paths"]["/api/v1/users/me"]["get"]["responses"]["401"]
    assert me["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }
    problem = spec["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail"} <= set(problem["required"])


def test_password_hashes_are_never_documented(spec: dict[str, Any]) -> None:
    assert "hashed_password" not in json.dumps(spec["components"]["schemas"])
    assert "hashed_password" not in json.dumps(spec)


def test_password_flow_is_documented(spec: dict[str, Any]) -> None:
    [scheme] = spec["components"]["securitySchemes"].values()
    assert scheme["flows"]["password"]["tokenUrl"] == "/api/v1/auth/login"


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_use_only_local_assets(client: AsyncClient, page: str) -> None:
    response = await client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert not re.search(r"""(https?:)?//[a-z]""", html), "no absolute or CDN URL"
    references = ASSET_ATTRIBUTE.findall(html)
    assets = [ref for ref in references if ref != "/openapi.json"]
    assert assets, html
    for ref in assets:
        assert ref.startswith("/static-offline-docs/"), ref
        asset = await client.get(ref)
        assert asset.status_code == 200, ref
        assert len(asset.content) > 0
    assert "/openapi.json" in html


async def test_swagger_ui_scripts_are_served(client: AsyncClient) -> None:
    for name, marker in [("swagger-ui-bundle.js", "SwaggerUIBundle"), ("redoc.standalone.js", "")]:
        response = await client.get(f"/static-offline-docs/{name}")
        assert response.status_code == 200
        assert "javascript" in response.headers["content-type"]
        assert marker in response.text
    redirect = await client.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200
