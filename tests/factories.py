import itertools
from dataclasses import dataclass

from fastapi import FastAPI
from httpx import AsyncClient

from app.core.config import get_settings
from app.models.user import UserCreate
from app.services.accounts import create_user

DEFAULT_PASSWORD = "correct-horse-battery"
_counter = itertools.count()


@dataclass
class TestUser:
    __test__ = False  # not a test class, though its name starts with "Test"

    id: int
    email: str
    password: str
    access_token: str = ""
    refresh_token: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


class UserFactory:
    """Users made through the real API (register, login); superusers through the model layer."""

    def __init__(self, app: FastAPI, client: AsyncClient) -> None:
        self.app = app
        self.client = client

    async def create(
        self,
        *,
        superuser: bool = False,
        email: str | None = None,
        login: bool = True,
        full_name: str | None = None,
    ) -> TestUser:
        email = email or f"user{next(_counter)}@example.com"
        if superuser:
            async with self.app.state.sessionmaker() as session:
                data = UserCreate(
                    email=email, password=DEFAULT_PASSWORD, full_name=full_name or "Admin"
                )
                created = await create_user(
                    session, data, rounds=get_settings().BCRYPT_ROUNDS, is_superuser=True
                )
                await session.commit()
                user_id = created.id
        else:
            response = await self.client.post(
                "/api/v1/auth/register",
                json={
                    "email": email,
                    "password": DEFAULT_PASSWORD,
                    "full_name": full_name or "Test User",
                },
            )
            assert response.status_code == 201, response.text
            user_id = response.json()["id"]
        assert user_id is not None
        user = TestUser(id=user_id, email=email, password=DEFAULT_PASSWORD)
        if login:
            await self.login(user)
        return user

    async def login(self, user: TestUser) -> None:
        response = await self.client.post(
            "/api/v1/auth/login", data={"username": user.email, "password": user.password}
        )
        assert response.status_code == 200, response.text
        user.access_token = response.json()["access_token"]
        user.refresh_token = response.json()["refresh_token"]
