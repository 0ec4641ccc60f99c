"""Every error, from every layer, is problem+json."""

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from httpx import AsyncClient, Response
from sqlalchemy import text

from app.core.config import get_settings
from app.core.db import SessionDep
from app.core.errors import ProblemError
from app.main import create_app
from app.models.user import RefreshToken, User
from tests.conftest import Serve
from tests.factories import UserFactory

PROBLEM = "application/problem+json"
# Two ways the app runs SQL: the generic layer's statements on a pooled connection
# (`db.connect()`: psycopg itself on PostgreSQL) and ORM sessions (auth, users).
PATHS = ("driver", "orm")


def assert_problem(response: Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["type"] == f"/problems/{slug}"
    assert body["status"] == status
    assert body["title"] and body["detail"]
    return body


@pytest.mark.parametrize("path", ["/nowhere", "/api/v1/nowhere", "/api/v2/users/me"])
async def test_unknown_route_is_404(client: AsyncClient, path: str) -> None:
    assert_problem(await client.get(path), 404, "not-found")


async def test_wrong_method_is_405_and_keeps_allow(client: AsyncClient) -> None:
    response = await client.delete("/health")
    assert_problem(response, 405, "method-not-allowed")
    assert response.headers["allow"] == "GET"
    # Starlette names only the first matching route's methods; the app names them all.
    response = await client.put("/api/v1/users/1", json={})
    assert_problem(response, 405, "method-not-allowed")
    assert response.headers["allow"] == "DELETE, GET, PATCH"


async def test_validation_error_lists_each_field(client: AsyncClient) -> None:
    response = await client.post("/api/v1/auth/register", json={"email": "nope", "extra": 1})
    body = assert_problem(response, 422, "validation-error")
    errors = body["errors"]
    assert {tuple(error["loc"]) for error in errors} == {
        ("body", "email"),
        ("body", "password"),
        ("body", "extra"),
    }
    assert all(isinstance(error["msg"], str) and error["type"] for error in errors)


async def test_invalid_json_is_422(client: AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/register", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    body = assert_problem(response, 422, "validation-error")
    assert body["errors"][0]["type"] == "json_invalid"


async def test_body_over_the_limit_with_content_length_is_413_unread(client: AsyncClient) -> None:
    limit = get_settings().MAX_BODY_BYTES
    chunks_sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal chunks_sent
        for _ in range(2):
            chunks_sent += 1
            yield b"x" * (limit // 2 + 1)

    response = await client.post(
        "/api/v1/auth/register",
        content=body(),
        headers={"Content-Type": "application/json", "Content-Length": str(limit + 2)},
    )
    assert_problem(response, 413, "payload-too-large")
    assert "X-Request-ID" in response.headers
    assert chunks_sent == 0


async def test_chunked_body_over_the_limit_is_413_before_read_whole(client: AsyncClient) -> None:
    limit = get_settings().MAX_BODY_BYTES
    chunk = 64 * 1024
    total_chunks = 2 * limit // chunk
    chunks_sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal chunks_sent
        for _ in range(total_chunks):
            chunks_sent += 1
            yield b"x" * chunk

    response = await client.post(
        "/api/v1/auth/register", content=body(), headers={"Content-Type": "application/json"}
    )
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "payload-too-large")
    assert chunks_sent == limit // chunk + 1 < total_chunks


async def test_body_at_the_limit_is_read(client: AsyncClient) -> None:
    limit = get_settings().MAX_BODY_BYTES
    payload = b'{"email": "a@example.com", "password": "long-enough", "full_name": "'
    payload += b"x" * (limit - len(payload) - 2) + b'"}'
    assert len(payload) == limit
    response = await client.post(
        "/api/v1/auth/register", content=payload, headers={"Content-Type": "application/json"}
    )
    body = assert_problem(response, 422, "validation-error")
    assert body["errors"][0]["loc"] == ["body", "full_name"]


async def test_unhandled_exception_is_a_generic_500(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    application = create_app()
    # create_app() reconfigures the root logger; listen again after it.
    logging.getLogger().addHandler(caplog.handler)

    @application.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret connection string postgres://admin:hunter2@db")

    client = await serve(application)
    response = await client.get("/boom", headers={"X-Request-ID": "boom-1"})
    body = assert_problem(response, 500, "internal-error")
    assert body["detail"] == "An unexpected error occurred"
    assert "hunter2" not in response.text and "Traceback" not in response.text
    assert response.headers["x-request-id"] == "boom-1"
    assert response.headers["x-content-type-options"] == "nosniff"

    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.exc_info is not None and "hunter2" in str(record.exc_info[1])
    assert getattr(record, "request_id", None) == "boom-1"


async def test_domain_error_keeps_its_slug_and_headers(serve: Serve) -> None:
    application = create_app()

    @application.get("/teapot")
    async def teapot() -> None:
        raise ProblemError("No coffee", slug="no-coffee", headers={"Retry-After": "7"})

    client = await serve(application)
    response = await client.get("/teapot")
    body = assert_problem(response, 400, "no-coffee")
    assert body["detail"] == "No coffee"
    assert response.headers["retry-after"] == "7"


async def test_unique_violation_past_the_checks_is_409(serve: Serve, users: UserFactory) -> None:
    await users.create(email="taken@example.com", login=False)
    application = create_app()

    @application.post("/duplicate")
    async def duplicate(session: SessionDep) -> None:
        session.add(User(email="taken@example.com", hashed_password="x"))
        await session.commit()

    client = await serve(application)
    body = assert_problem(await client.post("/duplicate"), 409, "unique-violation")
    assert body["errors"] == [
        {"loc": ["body", "email"], "msg": body["detail"], "type": "unique-violation"}
    ]


async def test_foreign_key_violation_is_422(serve: Serve) -> None:
    application = create_app()

    @application.post("/orphan")
    async def orphan(session: SessionDep) -> None:
        session.add(
            RefreshToken(user_id=999_999, token_digest="d" * 64, expires_at=User().created_at)
        )
        await session.commit()

    client = await serve(application)
    assert_problem(await client.post("/orphan"), 422, "missing-reference")


async def run_sql(request: Request, session: SessionDep, path: str, statement: Any) -> None:
    """Run one statement the way the app does on `path`, committing it."""
    if path == "driver":
        async with request.app.state.db.connect() as connection:
            await connection.execute(statement, {})
    else:
        connection = await session.connection()
        await connection.execute(statement)
        await session.commit()


def sql_route(application: FastAPI, statements: dict[str, Any]) -> None:
    """`POST /sql/{path}/{name}` runs statements[name] on the driver or the ORM path."""

    @application.post("/sql/{path}/{name}")
    async def run(request: Request, session: SessionDep, path: str, name: str) -> None:
        await run_sql(request, session, path, statements[name])


# Refers to a table that does not exist: the database refuses it whole, with the SQL in the
# driver's message ("LINE 1: SELECT ...") and in SQLAlchemy's ("[SQL: ...]").
BROKEN = text("SELECT hunter2 FROM missing_probe_table WHERE secret = 'hunter2'")
SQL_MARKERS = ("select", "missing_probe_table", "hunter2", "line 1", "[sql", "psycopg")
SQL_MARKERS += ("sqlalchemy", "sqlite", "traceback", "relation", "no such table")


def assert_no_sql(response: Response) -> None:
    """Neither the body nor any header says anything about the statement or the driver."""
    seen = response.text + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    leaked = [marker for marker in SQL_MARKERS if marker in seen.lower()]
    assert not leaked, (leaked, response.headers, response.text)


@pytest.mark.parametrize("path", PATHS)
async def test_a_database_error_is_a_generic_500_without_sql(
    serve: Serve, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    """A statement the database refuses, not for being down or busy (a programming error):
    500 with the generic detail; the SQL and the driver's message go to the log only."""
    application = create_app()
    logging.getLogger().addHandler(caplog.handler)
    sql_route(application, {"broken": BROKEN})
    client = await serve(application)

    response = await client.post(f"/sql/{path}/broken", headers={"X-Request-ID": f"sql-{path}"})
    body = assert_problem(response, 500, "internal-error")
    assert body["detail"] == "An unexpected error occurred"
    assert "retry-after" not in response.headers  # nothing a retry would fix
    assert_no_sql(response)
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.exc_info is not None and "missing_probe_table" in str(record.exc_info[1])
    assert getattr(record, "request_id", None) == f"sql-{path}"


PROBE_TABLE = """CREATE TABLE constraint_probe (
    id INTEGER PRIMARY KEY,
    label VARCHAR(20) NOT NULL,
    quantity INTEGER NOT NULL CONSTRAINT ck_constraint_probe_positive CHECK (quantity > 0)
)"""
VIOLATIONS = {
    "not-null": text("INSERT INTO constraint_probe (label, quantity) VALUES (NULL, 1)"),
    "check": text("INSERT INTO constraint_probe (label, quantity) VALUES ('hunter2', 0)"),
}


@pytest.fixture
async def constraint_probe(app: FastAPI) -> AsyncIterator[None]:
    """A table of the test's own with a NOT NULL and a CHECK constraint."""
    async with app.state.engine.begin() as connection:
        await connection.execute(text(PROBE_TABLE))
    try:
        yield
    finally:
        async with app.state.engine.begin() as connection:
            await connection.execute(text("DROP TABLE constraint_probe"))


@pytest.mark.parametrize("violation", sorted(VIOLATIONS))
@pytest.mark.parametrize("path", PATHS)
async def test_not_null_and_check_violations_are_409_conflict(
    app: FastAPI, serve: Serve, constraint_probe: None, path: str, violation: str
) -> None:
    application = create_app()
    sql_route(application, VIOLATIONS)
    client = await serve(application)

    response = await client.post(f"/sql/{path}/{violation}")
    body = assert_problem(response, 409, "conflict")
    assert body["errors"] == [{"loc": ["body"], "msg": body["detail"], "type": "conflict"}]
    assert_no_sql(response)
    async with app.state.engine.connect() as connection:
        stored = await connection.execute(text("SELECT count(*) FROM constraint_probe"))
        assert stored.scalar_one() == 0
