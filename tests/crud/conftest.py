"""Posts and comments made through the real API, for the generated-resource tests."""

import itertools
from typing import Any

import pytest
from httpx import AsyncClient

from tests.factories import TestUser

_counter = itertools.count()


class Blog:
    """Small factories for the demo resources: each call is one real POST."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client

    async def post(self, owner: TestUser, **fields: Any) -> dict[str, Any]:
        body = {"title": f"Post {next(_counter)}", **fields}
        response = await self.client.post("/api/v1/posts", json=body, headers=owner.headers)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    async def comment(
        self, author: TestUser, post: dict[str, Any], **fields: Any
    ) -> dict[str, Any]:
        body = {"post_id": post["id"], "body": f"Comment {next(_counter)}", **fields}
        response = await self.client.post("/api/v1/comments", json=body, headers=author.headers)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]


@pytest.fixture
def blog(client: AsyncClient) -> Blog:
    return Blog(client)
