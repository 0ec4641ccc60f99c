"""scripts/seed.py against the test database: idempotent, reproducible, fixtures, reset."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select

from app.core.config import get_settings
from app.models.comment import Comment
from app.models.post import Post, PostVote
from app.models.user import User
from scripts.demo_data import DEMO_DOMAIN
from scripts.fixtures import FixtureError
from scripts.seed import Options, seed
from tests.conftest import ROOT
from tests.factories import UserFactory

SMALL = {"users": 4, "posts": 12, "comments": 20, "votes": 30}


async def run_seed(**options: Any) -> list[str]:
    return await seed(Options(**{**SMALL, **options}), get_settings())


async def counts(app: FastAPI) -> dict[str, int]:
    async with app.state.engine.connect() as connection:

        async def count(table: Any) -> int:
            statement = select(func.count()).select_from(table)
            return int((await connection.execute(statement)).scalar_one())

        votes_counted = select(func.coalesce(func.sum(Post.votes), 0))
        return {
            "users": await count(User),
            "posts": await count(Post),
            "comments": await count(Comment),
            "votes": await count(PostVote),
            "votes_counted": int((await connection.execute(votes_counted)).scalar_one()),
        }


async def demo_posts(app: FastAPI) -> list[tuple[Any, ...]]:
    """What a post is, independent of database ids: time, title, text, owner's email."""
    statement = (
        select(Post.created_at, Post.title, Post.content, Post.published, User.email)
        .join(User, User.id == Post.owner_id)
        .order_by(Post.created_at)
    )
    async with app.state.engine.connect() as connection:
        return [tuple(row) for row in await connection.execute(statement)]


def run_script(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The real command line, on the test database (DATABASE_URL is set by conftest)."""
    return subprocess.run(
        [sys.executable, "scripts/seed.py", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_running_twice_adds_nothing(app: FastAPI) -> None:
    await run_seed()
    first = await counts(app)
    assert first == {"users": 4, "posts": 12, "comments": 20, "votes": 30, "votes_counted": 30}
    await run_seed()
    assert await counts(app) == first


async def test_the_same_seed_gives_the_same_data(app: FastAPI) -> None:
    await run_seed(seed=3)
    first = await demo_posts(app)
    await run_seed(seed=3, reset=True)
    assert await demo_posts(app) == first
    await run_seed(seed=4, reset=True)
    assert [row[1] for row in await demo_posts(app)] != [row[1] for row in first]


async def test_a_top_up_gives_the_rows_of_one_run(app: FastAPI) -> None:
    await run_seed(posts=10)
    await run_seed(posts=20)
    topped_up = await demo_posts(app)
    assert len(topped_up) == 20
    await run_seed(posts=20, reset=True)
    assert await demo_posts(app) == topped_up
    assert (await counts(app))["comments"] == SMALL["comments"]


async def test_reset_deletes_only_demo_users_and_what_they_own(
    app: FastAPI, client: AsyncClient, users: UserFactory
) -> None:
    alice = await users.create()
    response = await client.post("/api/v1/posts", json={"title": "Mine"}, headers=alice.headers)
    assert response.status_code == 201
    await run_seed()
    await run_seed(users=0, posts=0, comments=0, votes=0, reset=True)
    assert await counts(app) == {
        "users": 1,
        "posts": 1,
        "comments": 0,
        "votes": 0,
        "votes_counted": 0,
    }


async def test_reset_is_refused_in_production(app: FastAPI) -> None:
    await run_seed()
    before = await counts(app)
    result = run_script("--reset", ENVIRONMENT="production")
    assert result.returncode == 1
    assert "--reset is refused when ENVIRONMENT=production" in result.stderr
    assert await counts(app) == before


async def test_the_command_line_prints_plain_progress_and_the_login(app: FastAPI) -> None:
    result = run_script("--users", "2", "--posts", "3", "--comments", "4", "--votes", "5")
    assert result.returncode == 0, result.stderr
    assert "posts: adding 3 (0 already there)" in result.stdout
    assert f"demo1@{DEMO_DOMAIN}" in result.stdout
    assert (await counts(app))["posts"] == 3


# fixtures


def write(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "fixtures.json"
    path.write_text(json.dumps(document))
    return path


async def test_fixtures_load_users_and_records_linked_by_key(
    app: FastAPI, client: AsyncClient, tmp_path: Path, users: UserFactory
) -> None:
    bob = await users.create()
    path = write(
        tmp_path,
        {
            "users": [{"_key": "ada", "email": "ada@example.com", "password": "ada-password"}],
            "posts": [
                {"_key": "hello", "_owner": "ada", "title": "Hello", "content": "First"},
                {"_owner": bob.email, "title": "Bob's", "published": False},
            ],
            "comments": [{"_owner": "ada", "post_id": "hello", "body": "Me again"}],
        },
    )
    summary = await run_seed(users=0, posts=0, comments=0, votes=0, fixtures=path)
    assert any("1 users, 2 posts, 1 comments" in line for line in summary)
    login = await client.post(
        "/api/v1/auth/login", data={"username": "ada@example.com", "password": "ada-password"}
    )
    assert login.status_code == 200
    posts = (await client.get("/api/v1/posts", params={"sort": "id"})).json()["items"]
    assert [post["title"] for post in posts] == ["Hello"]  # Bob's is unpublished
    comments = (await client.get(f"/api/v1/posts/{posts[0]['id']}/comments")).json()["items"]
    assert comments[0]["body"] == "Me again"
    assert comments[0]["author_id"] == posts[0]["owner_id"]


@pytest.mark.parametrize(
    ("document", "where", "field"),
    [
        (
            {"posts": [{"_owner": "ada", "title": "ok"}, {"_owner": "ada", "title": ""}]},
            "posts[1]",
            "title",
        ),
        ({"posts": [{"_owner": "ada", "title": "x", "owner_id": 1}]}, "posts[0]", "owner_id"),
        ({"posts": [{"title": "no owner"}]}, "posts[0]", "_owner"),
        (
            {"comments": [{"_owner": "ada", "post_id": "nope", "body": "x"}]},
            "comments[0]",
            "post_id",
        ),
        ({"users": [{"email": "not-an-email", "password": "long-enough"}]}, "users[1]", "email"),
        ({"posts": [{"_owner": "ada", "_color": "red", "title": "x"}]}, "posts[0]", "_color"),
    ],
)
async def test_a_bad_record_is_named_and_nothing_is_committed(
    app: FastAPI, tmp_path: Path, document: dict[str, Any], where: str, field: str
) -> None:
    ada = {"_key": "ada", "email": "ada@example.com", "password": "ada-password"}
    document = {**document, "users": [ada, *document.get("users", [])]}
    path = write(tmp_path, document)
    with pytest.raises(FixtureError) as raised:
        await run_seed(users=0, posts=0, comments=0, votes=0, fixtures=path)
    message = str(raised.value)
    assert str(path) in message and where in message and field in message, message
    assert await counts(app) == dict.fromkeys(SMALL, 0) | {"votes_counted": 0}


async def test_an_unknown_section_is_refused(app: FastAPI, tmp_path: Path) -> None:
    path = write(tmp_path, {"books": []})
    with pytest.raises(FixtureError, match=r"unknown section\(s\) books"):
        await run_seed(users=0, posts=0, comments=0, votes=0, fixtures=path)


async def test_a_bad_fixture_file_fails_the_command(app: FastAPI, tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"users": [')
    result = run_script("--from", str(path))
    assert result.returncode == 1
    assert f"{path}: line 1: not valid JSON" in result.stderr
