import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select

from app.models.user import RefreshToken
from tests.crud.formats import PAGE_FIELDS
from tests.factories import DEFAULT_PASSWORD, TestUser, UserFactory

PROBLEM = "application/problem+json"
PUBLIC_FIELDS = {
    "id",
    "email",
    "full_name",
    "is_active",
    "is_superuser",
    "created_at",
    "updated_at",
}


async def login(client: AsyncClient, email: str, password: str) -> int:
    response = await client.post(
        "/api/v1/auth/login", data={"username": email, "password": password}
    )
    return response.status_code


async def refresh_status(client: AsyncClient, user: TestUser) -> int:
    response = await client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    return response.status_code


async def stored_refresh_tokens(app: FastAPI, user_id: int) -> int:
    async with app.state.sessionmaker() as session:
        query = (
            select(func.count()).select_from(RefreshToken).where(RefreshToken.user_id == user_id)
        )
        return (await session.exec(query)).scalar_one()


# /users/me


async def test_read_me(client: AsyncClient, users: UserFactory) -> None:
    user = await users.create()
    response = await client.get("/api/v1/users/me", headers=user.headers)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == PUBLIC_FIELDS
    assert body["id"] == user.id and body["email"] == user.email
    assert body["full_name"] == "Test User"
    assert body["updated_at"].endswith(("Z", "+00:00"))


async def test_read_me_without_token_is_401(client: AsyncClient) -> None:
    response = await client.get("/api/v1/users/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "/problems/not-authenticated"


async def test_update_me_changes_name_and_email(client: AsyncClient, users: UserFactory) -> None:
    user = await users.create()
    before = (await client.get("/api/v1/users/me", headers=user.headers)).json()
    response = await client.patch(
        "/api/v1/users/me",
        json={
            "full_name": "New Name",
            "email": "New.Address@Example.com",
            "current_password": DEFAULT_PASSWORD,
        },
        headers=user.headers,
    )
    assert response.status_code == 200
    body = response.json()
    assert "current_password" not in body
    assert body["full_name"] == "New Name"
    assert body["email"] == "new.address@example.com"
    assert body["updated_at"] > before["updated_at"]
    assert body["created_at"] == before["created_at"]
    assert await login(client, "new.address@example.com", DEFAULT_PASSWORD) == 200
    assert await login(client, user.email, DEFAULT_PASSWORD) == 401


async def test_update_me_only_touches_sent_fields(client: AsyncClient, users: UserFactory) -> None:
    user = await users.create()
    response = await client.patch(
        "/api/v1/users/me", json={"full_name": None}, headers=user.headers
    )
    assert response.status_code == 200
    assert response.json()["full_name"] is None
    assert response.json()["email"] == user.email


async def test_update_me_to_taken_email_is_409(client: AsyncClient, users: UserFactory) -> None:
    await users.create(email="taken@example.com", login=False)
    user = await users.create()
    response = await client.patch(
        "/api/v1/users/me",
        json={"email": "TAKEN@example.com", "current_password": DEFAULT_PASSWORD},
        headers=user.headers,
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == "/problems/email-taken"
    assert body["errors"][0]["loc"] == ["body", "email"]
    me = await client.get("/api/v1/users/me", headers=user.headers)
    assert me.json()["email"] == user.email


@pytest.mark.parametrize(
    ("sent", "status", "slug"),
    [
        ({}, 422, "validation-error"),
        ({"current_password": None}, 422, "validation-error"),
        ({"current_password": "not-my-password"}, 400, "wrong-password"),
        ({"current_password": ""}, 400, "wrong-password"),
        ({"current_password": "x" * 100}, 400, "wrong-password"),
    ],
)
async def test_update_me_changes_the_email_only_with_the_current_password(
    client: AsyncClient, users: UserFactory, sent: dict[str, object], status: int, slug: str
) -> None:
    """A stolen access token must not be enough to take the account's login over."""
    user = await users.create()
    payload = {"email": "thief@example.com", "full_name": "Thief", **sent}
    response = await client.patch("/api/v1/users/me", json=payload, headers=user.headers)
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == f"/problems/{slug}"
    if status == 422:
        assert body["errors"][0]["loc"] == ["body", "current_password"]
    me = (await client.get("/api/v1/users/me", headers=user.headers)).json()
    assert me["email"] == user.email and me["full_name"] == "Test User"
    assert await login(client, "thief@example.com", DEFAULT_PASSWORD) == 401


async def test_update_me_needs_no_password_for_the_same_email_or_the_name(
    client: AsyncClient, users: UserFactory
) -> None:
    user = await users.create()
    same = {"email": user.email.upper(), "full_name": "Renamed"}
    response = await client.patch("/api/v1/users/me", json=same, headers=user.headers)
    assert response.status_code == 200
    assert response.json()["email"] == user.email
    assert response.json()["full_name"] == "Renamed"


@pytest.mark.parametrize(
    "payload",
    [
        {"email": None},
        {"email": "not-an-email"},
        {"is_superuser": True},
        {"is_active": False},
        {"hashed_password": "x"},
        {"full_name": "x" * 256},
    ],
)
async def test_update_me_rejects_bad_input(
    client: AsyncClient, users: UserFactory, payload: dict[str, object]
) -> None:
    user = await users.create()
    response = await client.patch("/api/v1/users/me", json=payload, headers=user.headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["errors"]
    me = (await client.get("/api/v1/users/me", headers=user.headers)).json()
    assert me["email"] == user.email and me["is_superuser"] is False and me["is_active"] is True


async def test_update_me_without_token_is_401(client: AsyncClient) -> None:
    response = await client.patch("/api/v1/users/me", json={"full_name": "x"})
    assert response.status_code == 401


# /users/me/password


async def test_change_password_revokes_every_refresh_token(
    client: AsyncClient, users: UserFactory
) -> None:
    user = await users.create()
    other_session = TestUser(id=user.id, email=user.email, password=user.password)
    await users.login(other_session)
    response = await client.post(
        "/api/v1/users/me/password",
        json={"current_password": DEFAULT_PASSWORD, "new_password": "a-brand-new-pass"},
        headers=user.headers,
    )
    assert response.status_code == 204
    assert response.content == b""
    assert await refresh_status(client, user) == 401
    assert await refresh_status(client, other_session) == 401
    assert await login(client, user.email, DEFAULT_PASSWORD) == 401
    assert await login(client, user.email, "a-brand-new-pass") == 200


async def test_change_password_with_wrong_current_is_400(
    client: AsyncClient, users: UserFactory
) -> None:
    user = await users.create()
    response = await client.post(
        "/api/v1/users/me/password",
        json={"current_password": "not-my-password", "new_password": "a-brand-new-pass"},
        headers=user.headers,
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "/problems/wrong-password"
    assert await refresh_status(client, user) == 200
    assert await login(client, user.email, DEFAULT_PASSWORD) == 200


@pytest.mark.parametrize(
    "payload",
    [
        {"current_password": DEFAULT_PASSWORD, "new_password": "short"},
        {"current_password": DEFAULT_PASSWORD, "new_password": "é" * 37},  # 74 bytes
        {"current_password": DEFAULT_PASSWORD},
        {"current_password": DEFAULT_PASSWORD, "new_password": "long-enough", "extra": 1},
    ],
)
async def test_change_password_rejects_bad_input(
    client: AsyncClient, users: UserFactory, payload: dict[str, object]
) -> None:
    user = await users.create()
    response = await client.post("/api/v1/users/me/password", json=payload, headers=user.headers)
    assert response.status_code == 422
    assert response.json()["errors"]
    assert await login(client, user.email, DEFAULT_PASSWORD) == 200


async def test_change_password_without_token_is_401(client: AsyncClient) -> None:
    response = await client.post(
        "/api/v1/users/me/password",
        json={"current_password": DEFAULT_PASSWORD, "new_password": "a-brand-new-pass"},
    )
    assert response.status_code == 401


# Superuser routes

ADMIN_ROUTES = [
    ("GET", "/api/v1/users", None),
    ("GET", "/api/v1/users/{id}", None),
    ("PATCH", "/api/v1/users/{id}", {"full_name": "x"}),
    ("DELETE", "/api/v1/users/{id}", None),
]


@pytest.mark.parametrize(("method", "path", "payload"), ADMIN_ROUTES)
async def test_admin_routes_need_a_token(
    client: AsyncClient, users: UserFactory, method: str, path: str, payload: object
) -> None:
    user = await users.create(login=False)
    url = path.format(id=user.id)
    response = await client.request(method, url, json=payload)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path", "payload"), ADMIN_ROUTES)
async def test_admin_routes_are_403_for_normal_users(
    client: AsyncClient, users: UserFactory, method: str, path: str, payload: object
) -> None:
    user = await users.create()
    url = path.format(id=user.id)
    response = await client.request(method, url, json=payload, headers=user.headers)
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "/problems/forbidden"
    assert (await client.get("/api/v1/users/me", headers=user.headers)).status_code == 200


@pytest.mark.parametrize(("method", "path", "payload"), ADMIN_ROUTES[1:])
async def test_admin_routes_are_404_for_unknown_users(
    client: AsyncClient, users: UserFactory, method: str, path: str, payload: object
) -> None:
    admin = await users.create(superuser=True)
    response = await client.request(
        method, path.format(id=999_999), json=payload, headers=admin.headers
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "/problems/not-found"


async def test_admin_reads_a_user(client: AsyncClient, users: UserFactory) -> None:
    admin = await users.create(superuser=True)
    user = await users.create(login=False)
    response = await client.get(f"/api/v1/users/{user.id}", headers=admin.headers)
    assert response.status_code == 200
    assert set(response.json()) == PUBLIC_FIELDS
    assert response.json()["email"] == user.email


async def test_admin_patch_sets_flags(client: AsyncClient, users: UserFactory) -> None:
    admin = await users.create(superuser=True)
    user = await users.create()
    response = await client.patch(
        f"/api/v1/users/{user.id}",
        json={"is_superuser": True, "full_name": "Promoted"},
        headers=admin.headers,
    )
    assert response.status_code == 200
    assert response.json()["is_superuser"] is True
    assert response.json()["full_name"] == "Promoted"
    listing = await client.get("/api/v1/users", headers=user.headers)
    assert listing.status_code == 200

    response = await client.patch(
        f"/api/v1/users/{user.id}", json={"is_active": False}, headers=admin.headers
    )
    assert response.status_code == 200 and response.json()["is_active"] is False
    assert (await client.get("/api/v1/users/me", headers=user.headers)).status_code == 401


@pytest.mark.parametrize(
    "payload", [{"is_active": None}, {"is_superuser": None}, {"email": None}, {"id": 5}]
)
async def test_admin_patch_rejects_bad_input(
    client: AsyncClient, users: UserFactory, payload: dict[str, object]
) -> None:
    admin = await users.create(superuser=True)
    user = await users.create(login=False)
    response = await client.patch(f"/api/v1/users/{user.id}", json=payload, headers=admin.headers)
    assert response.status_code == 422


async def test_admin_changes_an_email_without_a_password(
    client: AsyncClient, users: UserFactory
) -> None:
    admin = await users.create(superuser=True)
    user = await users.create(login=False)
    response = await client.patch(
        f"/api/v1/users/{user.id}", json={"email": "moved@example.com"}, headers=admin.headers
    )
    assert response.status_code == 200
    assert response.json()["email"] == "moved@example.com"
    assert await login(client, "moved@example.com", DEFAULT_PASSWORD) == 200
    # The admin's route has no such field: sending one is an unknown field.
    extra = {"email": "again@example.com", "current_password": DEFAULT_PASSWORD}
    refused = await client.patch(f"/api/v1/users/{user.id}", json=extra, headers=admin.headers)
    assert refused.status_code == 422


async def test_admin_patch_to_taken_email_is_409(client: AsyncClient, users: UserFactory) -> None:
    admin = await users.create(superuser=True)
    user = await users.create(login=False)
    response = await client.patch(
        f"/api/v1/users/{user.id}", json={"email": admin.email}, headers=admin.headers
    )
    assert response.status_code == 409
    assert response.json()["errors"][0]["loc"] == ["body", "email"]


async def test_admin_delete_cascades_refresh_tokens(
    app: FastAPI, client: AsyncClient, users: UserFactory
) -> None:
    admin = await users.create(superuser=True)
    user = await users.create()
    assert await stored_refresh_tokens(app, user.id) == 1
    response = await client.delete(f"/api/v1/users/{user.id}", headers=admin.headers)
    assert response.status_code == 204
    assert response.content == b""
    assert await stored_refresh_tokens(app, user.id) == 0
    assert await stored_refresh_tokens(app, admin.id) == 1
    gone = await client.get(f"/api/v1/users/{user.id}", headers=admin.headers)
    assert gone.status_code == 404
    assert await refresh_status(client, user) == 401
    assert await login(client, user.email, DEFAULT_PASSWORD) == 401


# The list format


async def test_list_users_default_page(client: AsyncClient, users: UserFactory) -> None:
    admin = await users.create(superuser=True)
    created = [await users.create(login=False) for _ in range(2)]
    response = await client.get("/api/v1/users", headers=admin.headers)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == set(PAGE_FIELDS)
    assert body["total"] == 3 and body["limit"] == 20 and body["offset"] == 0
    assert body["next_cursor"] is None
    assert [item["id"] for item in body["items"]] == [admin.id, *(u.id for u in created)]
    assert all(set(item) == PUBLIC_FIELDS for item in body["items"])
    assert response.headers["x-total-count"] == "3"
    assert "link" not in response.headers


async def test_list_users_pages_by_offset(client: AsyncClient, users: UserFactory) -> None:
    admin = await users.create(superuser=True)
    ids = [admin.id] + [(await users.create(login=False)).id for _ in range(4)]

    middle = await client.get("/api/v1/users?limit=2&offset=2", headers=admin.headers)
    assert middle.status_code == 200
    body = middle.json()
    assert [item["id"] for item in body["items"]] == ids[2:4]
    assert (body["total"], body["limit"], body["offset"]) == (5, 2, 2)
    assert middle.headers["x-total-count"] == "5"
    assert middle.headers["link"] == (
        '<http://testserver/api/v1/users?limit=2&offset=4>; rel="next", '
        '<http://testserver/api/v1/users?limit=2&offset=0>; rel="prev"'
    )

    last = await client.get("/api/v1/users?limit=2&offset=4", headers=admin.headers)
    assert [item["id"] for item in last.json()["items"]] == ids[4:]
    assert last.headers["link"] == '<http://testserver/api/v1/users?limit=2&offset=2>; rel="prev"'

    first = await client.get("/api/v1/users?limit=2", headers=admin.headers)
    assert first.headers["link"] == '<http://testserver/api/v1/users?limit=2&offset=2>; rel="next"'

    beyond = await client.get("/api/v1/users?offset=50", headers=admin.headers)
    assert beyond.json()["items"] == [] and beyond.json()["total"] == 5


async def test_list_users_accepts_limit_100(client: AsyncClient, users: UserFactory) -> None:
    admin = await users.create(superuser=True)
    response = await client.get("/api/v1/users?limit=100", headers=admin.headers)
    assert response.status_code == 200
    assert response.json()["limit"] == 100


@pytest.mark.parametrize("query", ["limit=101", "limit=0", "offset=-1", "limit=abc"])
async def test_list_users_rejects_bad_paging(
    client: AsyncClient, users: UserFactory, query: str
) -> None:
    admin = await users.create(superuser=True)
    response = await client.get(f"/api/v1/users?{query}", headers=admin.headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["errors"][0]["loc"][0] == "query"
