"""MAX_BODY_BYTES holds for chunked bodies too, which announce no Content-Length.

BodySizeLimitMiddleware counts what the app reads and answers 413 problem+json once the count
passes the limit, so the rest is never asked for. The bodies here are streamed at the ASGI
level, chunk by chunk (`Transfer-Encoding: chunked`), to a JSON route (a post) and a form
route (a login), and the test counts the chunks the app pulled.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import func, select

from app.core.config import get_settings
from app.models.login_throttle import LoginFailure
from app.models.post import Post
from tests.crud.formats import assert_problem
from tests.factories import TestUser, UserFactory

LIMIT = get_settings().MAX_BODY_BYTES
CHUNK = 64 * 1024
JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@dataclass
class Stream:
    """A body sent in CHUNK-sized pieces: `head`, then filler up to `size` bytes, then `tail`."""

    head: bytes
    size: int
    tail: bytes = b""
    chunk: int = CHUNK
    pulled: int = 0  # chunks the app asked for

    async def chunks(self) -> AsyncIterator[bytes]:
        body = self.head + b"x" * (self.size - len(self.head) - len(self.tail)) + self.tail
        for start in range(0, len(body), self.chunk):
            self.pulled += 1
            yield body[start : start + self.chunk]

    @property
    def total_chunks(self) -> int:
        return -(-self.size // self.chunk)


async def send(client: AsyncClient, path: str, stream: Stream, headers: dict[str, str]) -> Response:
    response = await client.post(path, content=stream.chunks(), headers=headers)
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in response.request.headers
    return response


def assert_refused_early(response: Response, stream: Stream) -> None:
    body = assert_problem(response, 413, "payload-too-large")
    assert str(LIMIT) in body["detail"]
    # Read up to the first chunk past the limit, and not one more.
    assert stream.pulled == LIMIT // CHUNK + 1 < stream.total_chunks, stream.pulled


async def count(app: FastAPI, table: type[Post] | type[LoginFailure]) -> int:
    async with app.state.engine.connect() as connection:
        rows: int = (await connection.execute(select(func.count()).select_from(table))).scalar_one()
    return rows


@pytest.fixture
async def author(users: UserFactory) -> TestUser:
    return await users.create()


@pytest.mark.parametrize("signed_in", [True, False], ids=["author", "anonymous"])
async def test_a_chunked_post_over_the_limit_is_413(
    app: FastAPI, client: AsyncClient, author: TestUser, signed_in: bool
) -> None:
    stream = Stream(b'{"title": "big", "content": "', 2 * LIMIT, b'"}')
    headers = {**JSON, **(author.headers if signed_in else {})}
    assert_refused_early(await send(client, "/api/v1/posts", stream, headers), stream)
    assert await count(app, Post) == 0


async def test_a_chunked_login_over_the_limit_is_413(
    app: FastAPI, client: AsyncClient, author: TestUser
) -> None:
    """A form body, parsed as it streams in: refused before the credentials are looked at."""
    head = f"username={author.email}&password=".encode()
    stream = Stream(head, 2 * LIMIT)
    attempts = await count(app, LoginFailure)
    assert_refused_early(await send(client, "/api/v1/auth/login", stream, FORM), stream)
    assert await count(app, LoginFailure) == attempts  # no attempt was counted


async def test_chunked_bodies_within_the_limit_are_read(
    app: FastAPI, client: AsyncClient, author: TestUser
) -> None:
    """The same routes take chunked bodies up to the limit: the 413s above are the size."""
    post = Stream(b'{"title": "chunked", "content": "', 8_000, b'"}', chunk=1_000)
    created = await send(client, "/api/v1/posts", post, {**JSON, **author.headers})
    assert created.status_code == 201, created.text
    assert len(created.json()["content"]) == 8_000 - len(post.head) - len(post.tail)
    assert post.pulled == post.total_chunks == 8

    whole = Stream(b'{"title": "big", "content": "', LIMIT, b'"}')
    refused = await send(client, "/api/v1/posts", whole, {**JSON, **author.headers})
    # Past the content's own length limit: a 422 from validation, so it was read whole.
    assert_problem(refused, 422, "validation-error")
    assert whole.pulled == whole.total_chunks
    assert await count(app, Post) == 1

    login = Stream(f"username={author.email}&password={author.password}&x=".encode(), LIMIT)
    signed_in = await send(client, "/api/v1/auth/login", login, FORM)
    assert signed_in.status_code == 200, signed_in.text
    assert login.pulled == login.total_chunks
