"""The README's react-admin and refine auth providers (tests/frontend/auth/) against the live app.

`node --test auth.test.mjs`: log in, identity, a data call, an expired and an invalid access
token each refreshed and the call retried, concurrent calls sharing one refresh, logout
ending the login. Then the database: every refresh token of the user is revoked, and each
provider's login rotated exactly once per forced refresh.
"""

from datetime import timedelta

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import text

from app.core.config import get_settings
from app.core.security import create_access_token
from tests.conftest import ROOT
from tests.factories import UserFactory
from tests.frontend.conftest import node_test, require_node_modules

FULL_NAME = "Ada Admin"
# Each provider's login: the first pair, then a refresh for the expired token, the invalid
# one and the concurrent calls (one for all three).
TOKENS_PER_LOGIN = 4


async def test_auth_providers(app: FastAPI, live_url: str) -> None:
    require_node_modules()
    async with AsyncClient(base_url=live_url) as http:
        user = await UserFactory(app, http).create(email="ada@example.com", full_name=FULL_NAME)
        for title, published in (("Published", True), ("Draft", False)):
            body = {"title": title, "published": published}
            response = await http.post("/api/v1/posts", json=body, headers=user.headers)
            assert response.status_code == 201, response.text

        # An access token exactly like a real one but expired: unexpired, it works.
        secret = get_settings().SECRET_KEY
        fresh = create_access_token(user.id, secret, timedelta(minutes=5))
        response = await http.get("/api/v1/users/me", headers={"Authorization": f"Bearer {fresh}"})
        assert response.status_code == 200, response.text
        expired = create_access_token(user.id, secret, timedelta(minutes=-5))
        response = await http.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {expired}"}
        )
        assert response.status_code == 401, response.text

        # The seeding login ends here: from now on only the providers' logins exist.
        response = await http.post(
            "/api/v1/auth/logout", json={"refresh_token": user.refresh_token}
        )
        assert response.status_code == 204, response.text

    output = await node_test(
        "auth.test.mjs",
        {
            "API_URL": live_url,
            "EMAIL": user.email,
            "PASSWORD": user.password,
            "USER_ID": str(user.id),
            "FULL_NAME": FULL_NAME,
            "EXPIRED_TOKEN": expired,
        },
    )
    print(output)

    statement = text(
        "SELECT family, count(*) AS tokens, count(revoked_at) AS revoked FROM refresh_tokens "
        "WHERE user_id = :user_id GROUP BY family"
    )
    async with app.state.engine.connect() as connection:
        families = (await connection.execute(statement, {"user_id": user.id})).mappings().all()
    # The seeding login, then one login per provider; every token of every one revoked.
    assert sorted(row["tokens"] for row in families) == [1, TOKENS_PER_LOGIN, TOKENS_PER_LOGIN]
    assert all(row["revoked"] == row["tokens"] for row in families), families


def test_the_readme_shows_these_auth_providers() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in ("react-admin.mjs", "refine.mjs"):
        source = (ROOT / "tests" / "frontend" / "auth" / name).read_text().rstrip("\n")
        assert f"```js\n{source}\n```" in readme, f"README's copy of {name} is out of date"
