"""`/admin` over HTTP: who gets in, its cookies and headers, and bad input (the browser walk
through it is tests/browser/test_admin_page.py)."""

import re
from collections.abc import AsyncIterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from app.admin.views import CheckedView
from app.core.config import get_settings
from app.main import create_app
from scripts.scaffold import TYPES
from tests.factories import TestUser, UserFactory

LOGIN = "/admin/login"
CSRF_FIELD = re.compile(r'name="csrftoken" value="([^"]+)"')


async def csrf_token(client: AsyncClient, path: str = LOGIN) -> str:
    page = await client.get(path)
    found = CSRF_FIELD.search(page.text)
    assert found, f"no CSRF field on {path}"
    return found.group(1)


async def admin_login(client: AsyncClient, user: TestUser) -> Any:
    form = {"username": user.email, "password": user.password}
    return await client.post(LOGIN, data={**form, "csrftoken": await csrf_token(client)})


@pytest.fixture
async def admin_client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    """A client of its own (its own cookies), not following redirects."""
    transport = ASGITransport(app=app)
    async with AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def new_post(client: AsyncClient, author: TestUser, title: str) -> dict[str, Any]:
    response = await client.post("/api/v1/posts", json={"title": title}, headers=author.headers)
    assert response.status_code == 201, response.text
    return {**response.json(), "etag": response.headers["ETag"]}


@pytest.fixture
async def superuser(users: UserFactory) -> TestUser:
    return await users.create(superuser=True, full_name="Ada Admin")


async def test_a_superuser_logs_in_with_a_signed_httponly_lax_cookie(
    admin_client: AsyncClient, superuser: TestUser
) -> None:
    response = await admin_login(admin_client, superuser)
    assert response.status_code == 303, response.text
    cookie = next(c for c in response.headers.get_list("set-cookie") if "admin_session=" in c)
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    assert "secure" not in cookie.lower()  # development; production: the next test
    listed = await admin_client.get("/admin/posts/list")
    assert listed.status_code == 200
    assert "Content-Security-Policy" in listed.headers
    assert "default-src 'self'" in listed.headers["Content-Security-Policy"]
    assert listed.headers["X-Frame-Options"] == "DENY"


async def test_in_production_the_cookie_is_secure(users: UserFactory) -> None:
    settings = get_settings().model_copy(update={"ENVIRONMENT": "production"})
    application = create_app(settings)
    async with LifespanManager(application):
        transport = ASGITransport(app=application)
        async with AsyncClient(transport=transport, base_url="https://testserver") as http:
            admin = await UserFactory(application, http).create(superuser=True)
            response = await admin_login(http, admin)
    cookie = next(c for c in response.headers.get_list("set-cookie") if "admin_session=" in c)
    assert "secure" in cookie.lower()


async def test_a_normal_user_gets_no_admin_and_no_data(
    admin_client: AsyncClient, users: UserFactory
) -> None:
    user = await users.create()
    response = await admin_login(admin_client, user)
    assert response.status_code == 400
    assert "Only superusers" in response.text
    for path in ("/admin/", "/admin/posts/list", "/admin/users/list", "/admin/users/detail?pk=1"):
        refused = await admin_client.get(path)
        assert refused.status_code == 303 and refused.headers["location"].startswith(
            f"http://testserver{LOGIN}"
        ), path


async def test_forged_or_stale_sessions_go_back_to_login(
    admin_client: AsyncClient, superuser: TestUser, client: AsyncClient
) -> None:
    admin_client.cookies.set("admin_session", "forged.value.here", path="/admin")
    assert (await admin_client.get("/admin/posts/list")).status_code == 303
    admin_client.cookies.clear()
    assert (await admin_login(admin_client, superuser)).status_code == 303
    assert (await admin_client.get("/admin/posts/list")).status_code == 200
    # Logging out everywhere (a new token version) ends the admin session too.
    ended = await client.post("/api/v1/auth/logout-all", headers=superuser.headers)
    assert ended.status_code == 204
    assert (await admin_client.get("/admin/posts/list")).status_code == 303


async def test_a_post_without_the_csrf_token_is_403(
    admin_client: AsyncClient, superuser: TestUser, client: AsyncClient, users: UserFactory
) -> None:
    post = await new_post(client, await users.create(), "Keep me")
    assert (await admin_login(admin_client, superuser)).status_code == 303
    edit = f"/admin/posts/edit?pk={post['id']}"
    refused = await admin_client.post(edit, data={"title": "Changed", "content": ""})
    assert refused.status_code == 403
    token = await csrf_token(admin_client, edit)
    form = {"title": "Changed", "content": "", "published": "on", "csrftoken": token}
    saved = await admin_client.post(edit, data=form)
    assert saved.status_code in (302, 303), saved.text[:500]
    read = await admin_client.get(f"/api/v1/posts/{post['id']}")
    assert read.json()["title"] == "Changed"
    assert read.headers["ETag"] != post["etag"]


async def test_oversized_posts_are_413(admin_client: AsyncClient, superuser: TestUser) -> None:
    assert (await admin_login(admin_client, superuser)).status_code == 303
    body = {"title": "x" * (get_settings().MAX_BODY_BYTES + 1)}
    assert (await admin_client.post("/admin/posts/create", data=body)).status_code == 413


async def test_sql_looking_search_text_is_just_text(
    admin_client: AsyncClient, superuser: TestUser, client: AsyncClient, users: UserFactory
) -> None:
    author = await users.create()
    await new_post(client, author, "Plain title")
    quoted = await new_post(client, author, "it's 100% ' OR 1=1 --")
    assert (await admin_login(admin_client, superuser)).status_code == 303
    for term, found in (
        ("' OR 1=1 --", True),
        ("%", True),
        ("_lain", False),
        ("' OR '1'='1", False),
    ):
        page = await admin_client.get("/admin/posts/list", params={"q": term})
        assert page.status_code == 200
        assert (quoted["title"].replace("'", "&#39;") in page.text) is found, term
        assert "Plain title" not in page.text, term


async def test_failed_admin_logins_count_in_the_api_throttle(
    admin_client: AsyncClient, superuser: TestUser, client: AsyncClient
) -> None:
    wrong = {"username": superuser.email, "password": "wrong-password"}
    for _ in range(get_settings().LOGIN_MAX_FAILURES):
        token = await csrf_token(admin_client)
        failed = await admin_client.post(LOGIN, data={**wrong, "csrftoken": token})
        assert failed.status_code == 400
    api = await client.post("/api/v1/auth/login", data=wrong)
    assert api.status_code == 429


async def test_admin_enabled_false_serves_no_admin() -> None:
    application = create_app(get_settings().model_copy(update={"ADMIN_ENABLED": False}))
    transport = ASGITransport(app=application)
    async with AsyncClient(transport=transport, base_url="http://testserver") as http:
        assert (await http.get("/admin/login")).status_code == 404


async def test_a_superuser_sets_a_password_and_never_sees_a_hash(
    admin_client: AsyncClient, superuser: TestUser, client: AsyncClient, users: UserFactory
) -> None:
    user = await users.create()
    assert (await admin_login(admin_client, superuser)).status_code == 303
    detail = await admin_client.get("/admin/users/detail", params={"pk": user.id})
    assert detail.status_code == 200 and user.email in detail.text
    assert "$2b$" not in detail.text and "hashed_password" not in detail.text
    action = f"/admin/_api/users/row-action?pk={user.id}&name=set_password"
    token = await csrf_token(admin_client, "/admin/users/list")
    short = await admin_client.post(action, data={"password": "short", "csrftoken": token})
    assert short.status_code == 400
    done = await admin_client.post(action, data={"password": "a-new-secret-1", "csrftoken": token})
    assert done.status_code == 200, done.text
    # The old login is over; the new password logs in.
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": user.refresh_token}
    )
    assert refreshed.status_code == 401
    assert (await client.get("/api/v1/users/me", headers=user.headers)).status_code == 401
    form = {"username": user.email, "password": "a-new-secret-1"}
    assert (await client.post("/api/v1/auth/login", data=form)).status_code == 200


ANNOTATIONS: dict[str, type] = {
    **{"str": str, "text": str, "int": int, "float": float, "bool": bool},
    **{"date": date, "datetime": datetime, "decimal": Decimal, "uuid": UUID},
}


@pytest.mark.parametrize("field_type", TYPES)
def test_every_scaffold_field_type_gets_an_admin_field(field_type: str) -> None:
    """A scaffolded resource's admin view is built at start-up: a column type the admin cannot
    convert would stop the app (SQLAlchemy 2.1's Float did)."""
    # A base with a registry of its own: the model is not one of the app's tables.
    own_metadata = type("Unregistered", (SQLModel,), {}, registry=registry())
    model = type(
        f"Typed{field_type.title()}",
        (own_metadata,),
        {
            "__tablename__": f"typed_{field_type}",
            "__annotations__": {"id": int | None, "value": ANNOTATIONS[field_type]},
            "id": Field(default=None, primary_key=True),
        },
        table=True,
    )
    view = CheckedView(model, key=f"typed-{field_type}", menu_label=field_type)
    assert [field.name for field in view.fields] == ["id", "value"]
