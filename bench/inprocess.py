"""CPU µs per request of the generated posts endpoints, in process.

The ASGI app is called directly (no HTTP, no second process), one request at a time, on a
database seeded by `bench.seed`: a quick loop to weigh a change to the generic layer (or to
run under py-spy). `scripts/bench` stays the measurement of record.

    createdb -h 127.0.0.1 -U postgres inproc
    DATABASE_URL=postgresql://postgres@127.0.0.1/inproc .venv/bin/alembic upgrade head
    .venv/bin/python -m bench.seed --database-url postgresql://postgres@127.0.0.1/inproc
    DATABASE_URL=postgresql://postgres@127.0.0.1/inproc .venv/bin/python -m bench.inprocess
"""

import argparse
import json
import os
import secrets
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import psycopg
import uvloop

from bench.fixtures import CHANGED_POSTS
from bench.seed import UNPUBLISHED_EVERY, libpq_url

Request = tuple[str, str, bytes, bytes, list[tuple[bytes, bytes]]]


async def call(app: Any, request: Request) -> tuple[int, bytes]:
    method, path, query, body, headers = request
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    raw = [(b"host", b"127.0.0.1"), *headers]
    if body:
        raw += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": raw,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    await app(scope, receive, send)
    return sent[0]["status"], b"".join(message.get("body", b"") for message in sent[1:])


async def changes_since(app: Any) -> bytes:
    """The `changes` endpoint's query (bench.fixtures.prepare_changes, in process): a sync
    token after every change so far, then CHANGED_POSTS published posts stamped anew."""
    page: dict[str, Any] = {"has_more": True, "token": None}
    while page["has_more"]:
        query = b"limit=1000" + (b"&since=" + page["token"].encode() if page["token"] else b"")
        page = json.loads((await call(app, ("GET", "/api/v1/posts/changes", query, b"", [])))[1])
    with psycopg.connect(libpq_url(os.environ["DATABASE_URL"])) as connection:
        published = "SELECT id FROM posts WHERE published ORDER BY id"
        ids = [post_id for (post_id,) in connection.execute(published)]
        chosen = [ids[index * len(ids) // CHANGED_POSTS] for index in range(CHANGED_POSTS)]
        connection.execute("UPDATE posts SET title = title WHERE id = ANY(%s)", (chosen,))
    return f"limit={CHANGED_POSTS}&since={page['token']}".encode()


def published_id(number: int, posts: int) -> int:
    post_id = 1 + (number * 7919) % posts
    return post_id if post_id % UNPUBLISHED_EVERY else 1


async def measure(endpoints: list[str], count: int) -> None:
    from app.core.config import get_settings
    from app.core.security import create_access_token
    from app.main import create_app

    app = create_app()
    token = create_access_token(1, get_settings().SECRET_KEY, timedelta(hours=1))
    auth = [(b"authorization", f"Bearer {token}".encode())]
    with psycopg.connect(libpq_url(os.environ["DATABASE_URL"])) as connection:
        posts = connection.execute("SELECT count(*) FROM posts").fetchone()[0]  # type: ignore[index]
        own = [row[0] for row in connection.execute("SELECT id FROM posts WHERE owner_id = 1")]
    async with app.router.lifespan_context(app):
        _, first = await call(app, ("GET", "/api/v1/posts", b"limit=20", b"", []))
        cursor = quote(json.loads(first)["next_cursor"]).encode()
        since = await changes_since(app) if "changes" in endpoints else b""
        requests: dict[str, Callable[[int], Request]] = {
            "health": lambda i: ("GET", "/health", b"", b"", []),
            "get": lambda i: ("GET", f"/api/v1/posts/{published_id(i, posts)}", b"", b"", []),
            "expand-get": lambda i: (
                "GET",
                f"/api/v1/posts/{published_id(i, posts)}",
                b"expand=comments",
                b"",
                [],
            ),
            "expand-list": lambda i: (
                "GET",
                "/api/v1/posts",
                b"limit=20&offset=%d&expand=owner,comments.author" % (i * 37 % 9000),
                b"",
                [],
            ),
            "list": lambda i: (
                "GET",
                "/api/v1/posts",
                b"limit=20&offset=%d" % (i * 37 % 9000),
                b"",
                [],
            ),
            "compat-list": lambda i: (
                "GET",
                "/api/compat/json-server/posts",
                b"_start=%d&_end=%d" % (i * 37 % 9000, i * 37 % 9000 + 20),
                b"",
                [],
            ),
            "filter": lambda i: (
                "GET",
                "/api/v1/posts",
                b"published=true&sort=-created_at&limit=20",
                b"",
                [],
            ),
            "cursor": lambda i: ("GET", "/api/v1/posts", b"limit=20&cursor=" + cursor, b"", []),
            "changes": lambda i: ("GET", "/api/v1/posts/changes", since, b"", []),
            "create": lambda i: (
                "POST",
                "/api/v1/posts",
                b"",
                json.dumps({"title": f"t{i}"}).encode(),
                auth,
            ),
            "update": lambda i: (
                "PATCH",
                f"/api/v1/posts/{own[i % len(own)]}",
                b"",
                json.dumps({"title": f"u{i}"}).encode(),
                auth,
            ),
        }
        for endpoint in endpoints:
            make = requests[endpoint]
            for number in range(200):  # warm-up: caches, prepared statements, the pool
                status, body = await call(app, make(number))
                assert status < 300, (endpoint, status, body[:300])
            started, cpu = time.perf_counter(), time.process_time()
            for number in range(count):
                await call(app, make(number))
            wall = (time.perf_counter() - started) / count * 1e6
            used = (time.process_time() - cpu) / count * 1e6
            print(f"{endpoint:<7} {used:7.0f} µs CPU  {wall:7.0f} µs wall  per request", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "endpoints", nargs="?", default="health,get,list,filter,cursor,create,update"
    )
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    os.environ.setdefault("ENVIRONMENT", "production")
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(48))
    os.environ.setdefault("LOG_LEVEL", "warning")
    uvloop.run(measure(args.endpoints.split(","), args.requests))


if __name__ == "__main__":
    main()
