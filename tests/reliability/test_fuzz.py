"""Fuzzing with schemathesis: every operation in /openapi.json, anonymously and as a user.

A live uvicorn on 127.0.0.1 serves the suite's test database. Checks: no 5xx, and every
response conforms to the document (status documented, content type, body and header
schemas). Before each operation is fuzzed, the data it acts on is seeded (two users with
posts, drafts, comments and a vote), and most generated ids, refresh tokens and logins are
aimed at it: otherwise nearly every case stops at a 404 or 401 and the success paths, and
checks that run after a row is found (a malformed If-None-Match), are never reached.

Examples are bounded and derandomised so CI is quick and repeatable: FUZZ_EXAMPLES per
operation (default 12); CI sets more. `scripts/fuzz` runs the long, random version against
any live server.
"""

import itertools
import os
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
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

EXAMPLES_PER_OPERATION = int(os.environ.get("FUZZ_EXAMPLES", "12"))
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
# Operations a normal user must have seen succeed (2xx) during the fuzz.
REACHED_AS_A_USER = {
    "posts-get",
    "posts-update",
    "posts-replace",
    "posts-delete",
    "posts-vote",
    "comments-get",
    "comments-update",
    "comments-delete",
    "comments-list-by-post",
    "auth-refresh",
    "auth-login",
}
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


@dataclass
class Account:
    id: int
    email: str
    headers: dict[str, str]
    refresh_token: str


@dataclass
class Scene:
    """What is seeded for one operation's fuzz: the fuzzing user, another one, their rows."""

    me: Account
    other: Account
    ids: dict[str, list[int]] = field(default_factory=dict)  # by collection: posts, ...

    def aim(self, case: Any) -> None:
        """Point three cases in four at seeded rows and credentials (which three depends
        on the generated value, so derandomised runs stay repeatable)."""
        parts = case.operation.path.split("/")  # /api/v1/<collection>/...
        collection = parts[3] if len(parts) > 3 else ""
        for name, value in case.path_parameters.items():
            ids = self.ids.get(collection, [])
            if isinstance(value, int) and ids and _picked(value):
                case.path_parameters[name] = ids[value % len(ids)]
        body = case.body
        if isinstance(body, dict):
            if isinstance(body.get("refresh_token"), str) and _picked(body["refresh_token"]):
                body["refresh_token"] = self.me.refresh_token
            if isinstance(body.get("username"), str) and _picked(body["username"]):
                body["username"] = self.me.email
                if isinstance(body.get("password"), str) and _picked(body["password"]):
                    body["password"] = PASSWORD


def _picked(value: object) -> bool:
    return zlib.crc32(repr(value).encode()) % 4 != 0


@pytest.fixture(scope="module")
def http(live_server: str) -> Iterator[httpx.Client]:
    """One client for the seeding: a client per request costs more than the request."""
    with httpx.Client(base_url=live_server) as client:
        yield client


def sign_up(http: httpx.Client, name: str) -> Account:
    email = f"{name}{next(_emails)}@example.com"
    body = {"email": email, "password": PASSWORD, "full_name": name.title()}
    registered = http.post("/api/v1/auth/register", json=body)
    assert registered.status_code == 201, registered.text
    login = http.post("/api/v1/auth/login", data={"username": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    tokens = login.json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    return Account(registered.json()["id"], email, headers, tokens["refresh_token"])


@pytest.fixture
def scene(http: httpx.Client) -> Scene:
    """Seeded through the live server (the tables are emptied after each test)."""
    me, other = sign_up(http, "fuzz"), sign_up(http, "other")
    seeded = Scene(me, other, {"posts": [], "comments": [], "users": [me.id, other.id]})
    for owner in (me, other):
        for title, published in (("Seeded", True), ("Also seeded", True), ("Draft", False)):
            post = http.post(
                "/api/v1/posts",
                json={"title": title, "content": "seeded", "published": published},
                headers=owner.headers,
            )
            assert post.status_code == 201, post.text
            seeded.ids["posts"].append(post.json()["id"])
    for author in (me, other):
        for post_id in seeded.ids["posts"][::3]:  # each owner's first post: published
            comment = http.post(
                "/api/v1/comments",
                json={"post_id": post_id, "body": "seeded"},
                headers=author.headers,
            )
            assert comment.status_code == 201, comment.text
            seeded.ids["comments"].append(comment.json()["id"])
    voted = http.put(f"/api/v1/posts/{seeded.ids['posts'][3]}/vote", headers=me.headers)
    assert voted.status_code == 204, voted.text
    return seeded


@pytest.fixture(scope="module")
def tally(request: pytest.FixtureRequest) -> Iterator[Counter[str]]:
    """Responses by caller, operation and status, written to the terminal (and the CI log)."""
    counts: Counter[str] = Counter()
    yield counts
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        for caller in ("anonymous", "user"):
            mine: Counter[str] = Counter()
            for key, n in counts.items():
                if key.startswith(caller + " "):
                    mine[key.rsplit(" ", 1)[1]] += n
            statuses = ", ".join(f"{status}: {n}" for status, n in sorted(mine.items()))
            print(f"\nschemathesis {caller}: {sum(mine.values())} requests ({statuses})")


def operation_id(case: Any) -> str:
    return str(case.operation.definition.raw["operationId"])


def succeeded(tally: Counter[str], caller: str) -> set[str]:
    """The operations that answered 2xx at least once to this caller."""
    found = set()
    for key in tally:
        who, operation, status = key.split(" ")
        if who == caller and status.startswith("2"):
            found.add(operation)
    return found


@schemathesis.check
def schema_conformance_unless_trimmed(ctx: Any, response: Any, case: Any) -> bool | None:
    """The body schema, except for answers to `fields=`: those hold only the named properties,
    as the parameter documents (what they keep: tests/crud/test_expand.py)."""
    if case.query and case.query.get("fields"):
        return None
    return response_schema_conformance(ctx, response, case)  # type: ignore[no-any-return]


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    schema_conformance_unless_trimmed,
    response_headers_conformance,
]
# The document the live server serves: the same app, built from the same settings. Event
# streams never end, so a fuzzed request would wait forever for their body: their refusals
# (bad tokens, limits) are tested in tests/crud/test_sync_live.py.
schema = schemathesis.openapi.from_dict(create_app().openapi()).exclude(
    operation_id_regex=r"-events$"
)


@schema.parametrize()
@FUZZ_SETTINGS
def test_fuzz_anonymously(case: Any, scene: Scene, live_server: str, tally: Counter[str]) -> None:
    scene.aim(case)
    response = case.call_and_validate(base_url=live_server, checks=CHECKS)
    tally[f"anonymous {operation_id(case)} {response.status_code}"] += 1


@schema.parametrize()
@FUZZ_SETTINGS
def test_fuzz_as_a_user(case: Any, scene: Scene, live_server: str, tally: Counter[str]) -> None:
    scene.aim(case)
    response = case.call_and_validate(base_url=live_server, headers=scene.me.headers, checks=CHECKS)
    tally[f"user {operation_id(case)} {response.status_code}"] += 1


def test_the_fuzz_reached_the_success_paths(tally: Counter[str]) -> None:
    """Seeding works: the item routes did not only answer 404 and 401."""
    if not any(key.startswith("user ") for key in tally):
        pytest.skip("the user fuzz did not run in this session")
    missed = REACHED_AS_A_USER - succeeded(tally, "user")
    assert not missed, f"never a 2xx for {sorted(missed)}: {sorted(tally.items())}"


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
