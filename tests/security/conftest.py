from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI

from tests.factories import TestUser, UserFactory
from tests.security.gates import Build, gates


@pytest.fixture
async def build(app: FastAPI) -> AsyncIterator[Build]:
    """Apps with the production throttle limits (or overrides), sharing the test database."""
    async with gates() as start:
        yield start


@pytest.fixture
async def victim(users: UserFactory) -> TestUser:
    return await users.create(login=False)


@pytest.fixture
async def bystander(users: UserFactory) -> TestUser:
    return await users.create(login=False)
