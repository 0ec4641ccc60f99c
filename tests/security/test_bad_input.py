"""Injection and odd input: every attack is a 4xx problem and the database is unchanged.

The attacks are sent by the owner of the targeted post and comment (or by a superuser for the
/users routes), so nothing but the input itself stands between them and a write. Before and
after each one the test takes the row count of every table and a hash of users, posts and
comments. Values that are well-typed data (an SQL fragment as a title to search for) are not
errors: `test_sql_in_string_values_is_only_data` checks they are taken literally.
"""

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from app.core.config import get_settings
from tests.crud.conftest import Blog
from tests.factories import TestUser, UserFactory
from tests.security.state import snapshot

POSTS = "/api/v1/posts"
COMMENTS = "/api/v1/comments"
POST = POSTS + "/{post}"
COMMENT = COMMENTS + "/{comment}"
USER = "/api/v1/users/{user}"
BIG = 2**63
DROP = "'; DROP TABLE posts; --"
MAX_BODY = get_settings().MAX_BODY_BYTES
UNSET = object()


@dataclass(frozen=True)
class Attack:
    method: str
    path: str
    status: int
    params: dict[str, str] | None = None
    json: Any = UNSET
    content: str | bytes | None = None
    data: dict[str, str] | None = None
    files: dict[str, Any] | None = None
    headers: dict[str, Any] = field(default_factory=dict)
    admin: bool = False

    def describe(self) -> str:
        parts = [self.method, self.path]
        for name in ("params", "json", "data", "headers"):
            value = getattr(self, name)
            if value not in (None, UNSET, {}):
                parts.append(f"{name}={str(value)[:80]}")
        if self.content is not None:
            parts.append(f"content={self.content[:60]!r}...")
        return " ".join(parts)


def get(path: str, status: int = 422, **params: str) -> Attack:
    return Attack("GET", path, status, params=params)


def create_post(body: Any, status: int = 422, **kwargs: Any) -> Attack:
    return Attack("POST", POSTS, status, json=body, **kwargs)


def raw(method: str, path: str, content: str | bytes, status: int, **headers: str) -> Attack:
    return Attack(method, path, status, content=content, headers=headers)


def nested(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


def nested_objects(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


JSON = {"Content-Type": "application/json"}

ATTACKS: dict[str, list[Attack]] = {
    "nul-in-user-names": [
        Attack("PATCH", "/api/v1/users/me", 422, json={"full_name": "\x00"}),
        Attack(
            "POST",
            "/api/v1/auth/register",
            422,
            json={"email": "nul@example.com", "password": "long-enough", "full_name": "a\x00"},
        ),
    ],
    "sql-fragments": [
        get(POSTS, sort=DROP),
        get(POSTS, sort="1 OR 1=1"),
        get(POSTS, sort="title; DELETE FROM posts"),
        get(COMMENTS, sort="id DESC NULLS FIRST"),
        get(POSTS, id=DROP),
        get(POSTS, id="1 OR 1=1"),
        get(POSTS, id__in="1) OR (1=1"),
        get(POSTS, owner_id="1; DROP TABLE users"),
        get(POSTS, created_at__gt="2024-01-01' OR '1'='1"),
        get(POSTS, published="true OR 1=1"),
        get(POSTS, limit="1; DROP TABLE posts"),
        get(POSTS, offset="0 UNION SELECT hashed_password FROM users"),
        get(POST + "/comments", sort="'; DROP TABLE comments; --"),
        get(COMMENTS, post_id="1 OR 1=1"),
        get(POSTS + "/1 OR 1=1"),
        get(POSTS + "/1;DROP TABLE posts"),
        Attack("GET", "/api/v1/users", 422, params={"limit": "1 OR 1=1"}, admin=True),
        Attack("DELETE", POSTS + "/1 OR 1=1", 422),
    ],
    "wildcards": [
        get(POSTS, sort="%"),
        get(POSTS, sort="_"),
        get(POSTS, id="%"),
        get(POSTS, id__in="%,_"),
        get(POSTS, votes__gte="_"),
        get(POSTS, created_at="%"),
        get(POSTS, **{"title%": "x"}),
    ],
    "unicode": [
        get(POSTS, sort="títle"),
        get(POSTS, sort="😀"),
        get(POSTS, id="\u0661"),  # ARABIC-INDIC DIGIT ONE
        get(POSTS, id="\uff11"),  # FULLWIDTH DIGIT ONE
        get(POSTS, published="\uff54\uff52\uff55\uff45"),  # FULLWIDTH "true"
        get(COMMENTS, post_id="\u0663"),  # ARABIC-INDIC DIGIT THREE
        get(POSTS, **{"títle": "x"}),
        create_post({"title": "ok", "publishéd": True}),
    ],
    "null-bytes": [
        get(POSTS, title="a\x00b"),
        get(POSTS, q="\x00"),
        get(POSTS, title__contains="\x00"),
        get(POSTS, sort="title\x00"),
        get(POSTS, id="1\x00"),
        get(POSTS, cursor="\x00"),
        get(POSTS, **{"title\x00": "x"}),
        create_post({"title": "a\x00b"}),
        create_post({"title": "ok", "ti\x00tle": "x"}),
        Attack("PATCH", POST, 422, json={"content": "\x00"}),
        Attack("POST", COMMENTS, 422, json={"post_id": 1, "body": "\x00"}),
        Attack(
            "POST",
            "/api/v1/auth/register",
            422,
            json={"email": "a\x00b@example.com", "password": "long-enough"},
        ),
    ],
    "huge-numbers": [
        get(f"{POSTS}/{BIG}"),
        get(f"{COMMENTS}/{2**64}"),
        get(f"{POSTS}/{BIG}/comments"),
        Attack("PATCH", f"{POSTS}/{BIG}", 422, json={"title": "x"}),
        Attack("GET", f"/api/v1/users/{BIG}", 422, admin=True),
        Attack("DELETE", f"/api/v1/users/{BIG}", 422, admin=True),
        get(POSTS, id=str(BIG)),
        get(POSTS, id__in=f"1,{BIG}"),
        get(POSTS, votes__gt=str(BIG)),
        get(POSTS, owner_id__lt=str(-BIG - 1)),
        get(POSTS, offset=str(BIG)),
        get(POSTS, limit=str(BIG)),
        get(POSTS, id=str(10**400)),
        get(POSTS, id="9" * 5000),
        get(POSTS, votes="1e309"),
        get(POSTS, created_at__gt="0001-01-01T00:00:00+14:00"),
        get(POSTS, created_at__lt="9999-12-31T23:59:59-14:00"),
        Attack("POST", COMMENTS, 422, json={"post_id": BIG, "body": "x"}),
        Attack("POST", COMMENTS, 422, json={"post_id": 10**100, "body": "x"}),
        Attack("GET", "/api/v1/users", 422, params={"offset": str(BIG)}, admin=True),
    ],
    "negative-ids": [
        get(POSTS + "/-1"),
        get(POSTS + "/0"),
        Attack("DELETE", COMMENTS + "/-1", 422),
        Attack("PUT", POSTS + "/-5", 422, json={"title": "x"}),
        get(POSTS + "/-1/comments"),
        Attack("POST", COMMENTS, 422, json={"post_id": -1, "body": "x"}),
        Attack("POST", COMMENTS, 422, json={"post_id": 0, "body": "x"}),
        Attack("PATCH", "/api/v1/users/-1", 404, json={"full_name": "x"}, admin=True),
        get(POSTS, limit="-1"),
        get(POSTS, offset="-1"),
    ],
    "wrong-json-types": [
        create_post({"title": 123}),
        create_post({"title": ["a"]}),
        create_post({"title": {"a": 1}}),
        create_post({"title": None}),
        create_post({"title": True}),
        create_post({"title": "ok", "published": "maybe"}),
        create_post({"title": "ok", "published": 2}),
        create_post({"title": "ok", "published": []}),
        create_post({"title": "ok", "content": 5}),
        create_post([]),
        create_post(["title", "x"]),
        create_post("title"),
        create_post(None),
        create_post(1),
        create_post(True),
        Attack("POST", COMMENTS, 422, json={"post_id": "abc", "body": "x"}),
        Attack("POST", COMMENTS, 422, json={"post_id": 1.5, "body": "x"}),
        Attack("POST", COMMENTS, 422, json={"post_id": [1], "body": "x"}),
        Attack("POST", COMMENTS, 422, json={"post_id": {"id": 1}, "body": "x"}),
        Attack("POST", COMMENTS, 422, json={"post_id": None, "body": "x"}),
        Attack("POST", COMMENTS, 422, json={"post_id": True, "body": "x"}),
        Attack("PATCH", POST, 422, json={"title": False}),
        Attack("PATCH", POST, 422, json={"title": None}),
        Attack("PATCH", COMMENT, 422, json={"body": 7}),
        Attack("PUT", POST, 422, json={"title": "ok", "published": None}),
        Attack("PATCH", "/api/v1/users/me", 422, json={"email": 5}),
        Attack("PATCH", "/api/v1/users/me", 422, json={"is_superuser": True}),
        Attack("PATCH", USER, 422, json={"is_superuser": "yes please"}, admin=True),
        Attack(
            "POST",
            "/api/v1/auth/register",
            422,
            json={"email": ["a@example.com"], "password": "long-enough"},
        ),
        Attack("POST", "/api/v1/auth/refresh", 422, json={"refresh_token": 5}),
        raw("POST", POSTS, '{"title": NaN}', 422, **JSON),
        raw("POST", POSTS, '{"title": "ok", "published": Infinity}', 422, **JSON),
    ],
    "deep-nesting": [
        raw("POST", POSTS, nested(10_000), 400, **JSON),
        raw("POST", POSTS, '{"title": ' + nested(10_000) + "}", 400, **JSON),
        raw("POST", POSTS, nested_objects(10_000), 400, **JSON),
        raw("PATCH", POST, '{"title": ' + nested(10_000) + "}", 400, **JSON),
        raw("POST", COMMENTS, '{"post_id": ' + nested(10_000) + ', "body": "x"}', 400, **JSON),
        raw("POST", "/api/v1/auth/register", nested_objects(10_000), 400, **JSON),
        raw("POST", POSTS, '{"title": ' + nested(500) + "}", 422, **JSON),
    ],
    "oversized-bodies": [
        create_post({"title": "ok", "content": "x" * MAX_BODY}, 413),
        Attack("PATCH", POST, 413, json={"content": "x" * MAX_BODY}),
        Attack(
            "POST",
            "/api/v1/auth/register",
            413,
            json={"email": "big@example.com", "password": "x" * MAX_BODY},
        ),
        raw("POST", POSTS, '{"title": "ok"}' + " " * MAX_BODY, 413, **JSON),
    ],
    "content-types": [
        raw("POST", POSTS, '{"title": "x"}', 422, **{"Content-Type": "text/plain"}),
        raw(
            "POST",
            POSTS,
            "<post><title>x</title></post>",
            422,
            **{"Content-Type": "application/xml"},
        ),
        raw("PATCH", POST, '{"title": "x"}', 422, **{"Content-Type": "text/plain"}),
        Attack("POST", POSTS, 422, data={"title": "x"}),
        Attack("POST", POSTS, 422, files={"title": ("title.txt", b"x", "text/plain")}),
        Attack("PUT", POST, 422, data={"title": "x"}),
        Attack("POST", COMMENTS, 422, data={"post_id": "1", "body": "x"}),
        Attack(
            "POST", "/api/v1/auth/login", 422, json={"username": "a@example.com", "password": "x"}
        ),
        Attack(
            "POST",
            "/api/v1/auth/register",
            422,
            data={"email": "c@example.com", "password": "long-enough"},
        ),
        raw("POST", POSTS, b'{"title": "\xff\xfe"}', 400, **JSON),
        raw("POST", POSTS, "", 422, **JSON),
    ],
    "if-match": [
        Attack("PATCH", POST, 400, json={"title": "x"}, headers={"If-Match": ""}),
        Attack("PATCH", POST, 400, json={"title": "x"}, headers={"If-Match": ","}),
        Attack("PATCH", POST, 400, json={"title": "x"}, headers={"If-Match": "x" * 10_000}),
        Attack("DELETE", POST, 400, headers={"If-Match": '*, "1"'}),
        Attack("DELETE", COMMENT, 400, headers={"If-Match": "W/"}),
        Attack("PUT", POST, 400, json={"title": "x"}, headers={"If-Match": b'"\xe9"x'}),
        Attack("DELETE", POST, 412, headers={"If-Match": '"' + "9" * 5000 + '"'}),
        Attack("DELETE", POST, 412, headers={"If-Match": f'"{2**70}.1"'}),
        Attack(
            "PATCH", POST, 412, json={"title": "x"}, headers={"If-Match": '"1.' + "9" * 5000 + '"'}
        ),
    ],
    "cursors": [
        get(POSTS, cursor="x" * 2049),
        get(POSTS, cursor="é"),
        get(POSTS, cursor="===="),
        get(POSTS, cursor=DROP),
        get(POST + "/comments", cursor="garbage"),
        get(COMMENTS, cursor="//"),
    ],
    "idempotency-keys": [
        create_post({"title": "ok"}, headers={"Idempotency-Key": "has space"}),
        create_post({"title": "ok"}, headers={"Idempotency-Key": "x" * 256}),
        create_post({"title": "ok"}, headers={"Idempotency-Key": ""}),
        create_post({"title": "ok"}, headers={"Idempotency-Key": "a\tb"}),
        create_post({"title": "ok"}, headers={"Idempotency-Key": "\xe9t\xe9".encode("latin-1")}),
        create_post({"title": "ok"}, headers={"Idempotency-Key": DROP}),
        Attack(
            "POST",
            COMMENTS,
            422,
            json={"post_id": 1, "body": "x"},
            headers={"Idempotency-Key": "two words"},
        ),
    ],
}


@dataclass
class Scene:
    app: FastAPI
    client: AsyncClient
    owner: TestUser
    admin: TestUser
    ids: dict[str, int]


@pytest.fixture
async def scene(app: FastAPI, client: AsyncClient, users: UserFactory) -> Scene:
    owner = await users.create()
    admin = await users.create(superuser=True)
    blog = Blog(client)
    post = await blog.post(owner)
    comment = await blog.comment(owner, post)
    ids = {"post": post["id"], "comment": comment["id"], "user": owner.id}
    return Scene(app, client, owner, admin, ids)


async def send(scene: Scene, attack: Attack) -> tuple[int, str, str]:
    """Send one attack; its status, content type and (short) body."""
    caller = scene.admin if attack.admin else scene.owner
    headers = {**caller.headers, **attack.headers}
    kwargs: dict[str, Any] = {
        "params": attack.params,
        "content": attack.content,
        "data": attack.data,
        "files": attack.files,
    }
    if attack.json is not UNSET:
        kwargs["content"] = json.dumps(attack.json)
        headers.setdefault("Content-Type", "application/json")
    response = await scene.client.request(
        attack.method,
        attack.path.format(**scene.ids),
        headers=headers,
        **{name: value for name, value in kwargs.items() if value is not None},
    )
    return response.status_code, response.headers.get("content-type", ""), response.text[:160]


async def check(scene: Scene, attack: Attack) -> str | None:
    """None when the attack got its 4xx problem and changed nothing; else what went wrong."""
    before = await snapshot(scene.app)
    status, content_type, body = await send(scene, attack)
    changed = await snapshot(scene.app) != before
    if status == attack.status and content_type == "application/problem+json" and not changed:
        return None
    database = "CHANGED the database" if changed else "database unchanged"
    return f"{attack.describe()}\n    -> {status} {content_type} ({database}): {body}"


@pytest.mark.parametrize("category", sorted(ATTACKS))
async def test_attack_is_a_4xx_problem_and_changes_nothing(scene: Scene, category: str) -> None:
    failures = [failure for attack in ATTACKS[category] if (failure := await check(scene, attack))]
    assert not failures, f"{len(failures)} of {len(ATTACKS[category])}:\n" + "\n".join(failures)
    # The scene survived every attack: the owner's post is still there and readable.
    post = await scene.client.get(POSTS + f"/{scene.ids['post']}")
    assert post.status_code == 200


async def test_a_problem_never_echoes_a_stack_or_sql(scene: Scene) -> None:
    """Refusals say what was wrong with the input, not how the query looked."""
    status, _type, body = await send(scene, get(POSTS, id=str(BIG)))
    assert status == 422
    for marker in ("SELECT", "Traceback", "sqlite", "psycopg", "posts."):
        assert marker not in body


async def test_sql_in_string_values_is_only_data(scene: Scene) -> None:
    """String filters and search bind the value: an SQL fragment matches itself, literally."""
    blog = Blog(scene.client)
    trap = await blog.post(scene.owner, title=DROP, content="1 OR 1=1 %_")
    before = await snapshot(scene.app)
    cases = {
        "title": ([trap["id"]], {"title": DROP}),
        "title__ne": ([scene.ids["post"]], {"title__ne": DROP}),
        "title__contains": ([trap["id"]], {"title__contains": "DROP TABLE"}),
        "title__startswith": ([], {"title__startswith": "%"}),
        "title__icontains": ([trap["id"]], {"title__icontains": "drop table posts; --"}),
        "title__in": ([trap["id"]], {"title__in": DROP}),
        "q": ([trap["id"]], {"q": "1 OR 1=1 %_"}),
        "q-wildcard": ([], {"q": "%%"}),
        "q-quote": ([], {"q": "' OR ''='"}),
    }
    for name, (expected, params) in cases.items():
        response = await scene.client.get(POSTS, params={**params, "sort": "id"})
        assert response.status_code == 200, (name, response.text)
        assert [item["id"] for item in response.json()["items"]] == expected, name
    assert await snapshot(scene.app) == before
