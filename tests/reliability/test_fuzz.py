"""Fuzzing with schemathesis: every operation in /openapi.json, anonymously and as a user.

A live uvicorn on 127.0.0.1 serves the suite's test database. Checks: no 5xx, and every
response conforms to the document (status documented, content type, body and header
schemas). Examples are bounded and derandomised so CI is quick and repeatable; `scripts/fuzz`
runs the long, random version against any live server.
"""

import itertools
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.core.config import get_settings
from app.main import create_app
from tests.deploy.services import (
    PASSWORD,
    VENV_BIN,
    app_env,
    free_port,
    running,
    wait_until_ready,
)

EXAMPLES_PER_OPERATION = 12
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
_emails = itertools.count()


@pytest.fixture(scope="module")
def live_server(app: FastAPI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app under uvicorn on the suite's (migrated) test database."""
    port = free_port()
    env = app_env(get_settings().DATABASE_URL, LOG_LEVEL="WARNING")
    argv = [
        str(VENV_BIN / "uvicorn"), "app.main:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
    ]  # fmt: skip
    logs = Path(tmp_path_factory.mktemp("fuzz-logs"))
    with running(argv, env, logs, "fuzz-uvicorn") as service:
        wait_until_ready(service, port)
        yield f"http://127.0.0.1:{port}"
        assert "Traceback" not in service.stderr(), service.describe()


@pytest.fixture
def user_headers(live_server: str) -> dict[str, str]:
    """A normal user of the live server (the tables are emptied after each test)."""
    email = f"fuzz{next(_emails)}@example.com"
    body = {"email": email, "password": PASSWORD, "full_name": "Fuzz"}
    assert httpx.post(f"{live_server}/api/v1/auth/register", json=body).status_code == 201
    login = httpx.post(
        f"{live_server}/api/v1/auth/login", data={"username": email, "password": PASSWORD}
    )
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


@pytest.fixture(scope="module")
def tally(request: pytest.FixtureRequest) -> Iterator[Counter[str]]:
    """Responses by caller and status, written to the terminal (and so the CI log)."""
    counts: Counter[str] = Counter()
    yield counts
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        for caller in ("anonymous", "user"):
            mine = {key.split()[1]: n for key, n in counts.items() if key.startswith(caller)}
            statuses = ", ".join(f"{status}: {n}" for status, n in sorted(mine.items()))
            print(f"\nschemathesis {caller}: {sum(mine.values())} requests ({statuses})")


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# The document the live server serves: the same app, built from the same settings.
schema = schemathesis.openapi.from_dict(create_app().openapi())


@schema.parametrize()
@FUZZ_SETTINGS
def test_fuzz_anonymously(case: Any, live_server: str, tally: Counter[str]) -> None:
    response = case.call_and_validate(base_url=live_server, checks=CHECKS)
    tally[f"anonymous {response.status_code}"] += 1


@schema.parametrize()
@FUZZ_SETTINGS
def test_fuzz_as_a_user(
    case: Any, live_server: str, user_headers: dict[str, str], tally: Counter[str]
) -> None:
    response = case.call_and_validate(base_url=live_server, headers=user_headers, checks=CHECKS)
    tally[f"user {response.status_code}"] += 1


def responses(app: FastAPI, method: str, path: str) -> set[str]:
    return set(app.openapi()["paths"][path][method.lower()]["responses"])


def test_outage_and_body_errors_are_documented(app: FastAPI) -> None:
    """503 on everything that needs the database; 400 and 413 wherever a body is read."""
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            documented = set(operation["responses"])
            if path.startswith("/api/v1/"):
                assert "503" in documented, (method, path)
            if "requestBody" in operation:
                assert {"400", "413"} <= documented, (method, path)


@pytest.mark.parametrize("path", ["/api/v1/posts/{item_id}", "/api/v1/comments/{item_id}"])
def test_get_documents_400_for_a_malformed_if_none_match(app: FastAPI, path: str) -> None:
    assert "400" in responses(app, "GET", path)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/posts",
        "/api/v1/posts/{item_id}",
        "/api/v1/comments",
        "/api/v1/comments/{item_id}",
        "/api/v1/posts/{parent_id}/comments",
    ],
)
def test_public_reads_document_401_for_an_invalid_token(app: FastAPI, path: str) -> None:
    """An invalid or expired token is 401 even where no token is needed (app/api/deps.py)."""
    assert "401" in responses(app, "GET", path)
