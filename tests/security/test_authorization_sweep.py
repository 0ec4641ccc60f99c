"""Authorization sweep (API1, API3, API5): every operation in /openapi.json, three callers.

For each operation the path is filled with real ids of objects owned by user A, the body is the
request schema's minimal valid body (plus a few per-operation values), and it is called by an
anonymous client, by user B (who owns nothing there) and by a superuser, in that order. The
declared policy says what each of them gets. On every response: no password hash, and no email
of a user other than the caller unless the caller is a superuser. A refused call changes nothing.

An operation without an entry in OPERATIONS fails `test_every_operation_has_an_expectation`.
"""

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import jwt
import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response

from app.core.config import get_settings
from tests.crud.conftest import Blog
from tests.crud.formats import PROBLEM
from tests.factories import TestUser, UserFactory
from tests.security.state import owned_rows, snapshot

METHODS = ("get", "post", "put", "patch", "delete")
FORM = "application/x-www-form-urlencoded"
_emails = itertools.count()


class Policy(StrEnum):
    PUBLIC = "public"  # anyone, with or without a token
    ENTRY = "entry"  # auth entry points: a caller's token neither helps nor changes the subject
    SELF = "self"  # any signed-in user, acting on their own account only
    AUTHENTICATED = "authenticated"  # any signed-in user; what they create is theirs
    OWNER = "owner"  # the owner and superusers; others 403, anonymous 401
    SUPERUSER = "superuser"  # superusers only


ANONYMOUS, OTHER, SUPERUSER = "anonymous", "other", "superuser"
ROLES = (ANONYMOUS, OTHER, SUPERUSER)
OK = 0  # stands for the operation's documented 2xx status
EXPECTED: dict[Policy, dict[str, int]] = {
    Policy.PUBLIC: {ANONYMOUS: OK, OTHER: OK, SUPERUSER: OK},
    Policy.ENTRY: {ANONYMOUS: OK, OTHER: OK, SUPERUSER: OK},
    Policy.SELF: {ANONYMOUS: 401, OTHER: OK, SUPERUSER: OK},
    Policy.AUTHENTICATED: {ANONYMOUS: 401, OTHER: OK, SUPERUSER: OK},
    Policy.OWNER: {ANONYMOUS: 401, OTHER: 403, SUPERUSER: OK},
    Policy.SUPERUSER: {ANONYMOUS: 401, OTHER: 403, SUPERUSER: OK},
}


@dataclass
class Scene:
    """A (the owner of every object the paths name), B, a superuser, and A's objects."""

    app: FastAPI
    client: AsyncClient
    owner: TestUser
    other: TestUser
    admin: TestUser
    post: dict[str, Any]
    comment: dict[str, Any]
    tag: dict[str, Any]

    def caller(self, role: str) -> TestUser | None:
        return {ANONYMOUS: None, OTHER: self.other, SUPERUSER: self.admin}[role]

    def path_ids(self) -> dict[str, int | str]:
        """Collection name (or `by-<key>`) -> the id (or key) of A's object in it."""
        return {
            "users": self.owner.id,
            "posts": self.post["id"],
            "comments": self.comment["id"],
            "tags": self.tag["id"],
            "by-slug": self.tag["slug"],
        }

    @property
    def emails(self) -> set[str]:
        return {self.owner.email, self.other.email, self.admin.email}


Values = Callable[[Scene, TestUser | None], Awaitable[Any]]  # a body's values, or bulk items


def fixed(**values: Any) -> Values:
    async def build(_scene: Scene, _caller: TestUser | None) -> dict[str, Any]:
        return values

    return build


async def owner_credentials(scene: Scene, _caller: TestUser | None) -> dict[str, Any]:
    return {"username": scene.owner.email, "password": scene.owner.password}


async def fresh_refresh_token(scene: Scene, _caller: TestUser | None) -> dict[str, Any]:
    """A live refresh token of A's for each call (refresh and logout consume it)."""
    response = await scene.client.post(
        "/api/v1/auth/login", data=await owner_credentials(scene, None)
    )
    assert response.status_code == 200, response.text
    return {"refresh_token": response.json()["refresh_token"]}


async def callers_password(_scene: Scene, caller: TestUser | None) -> dict[str, Any]:
    password = caller.password if caller else "not-signed-in"
    return {"current_password": password, "new_password": password}


async def on_owners_post(scene: Scene, _caller: TestUser | None) -> dict[str, Any]:
    return {"post_id": scene.post["id"]}


async def vote_first(scene: Scene, caller: TestUser | None) -> None:
    """Unvoting needs a vote of the caller's own; A's vote must survive the others' unvotes."""
    if caller is not None:
        path = f"/api/v1/posts/{scene.post['id']}/vote"
        assert (await scene.client.put(path, headers=caller.headers)).status_code == 204


@dataclass(frozen=True)
class Expect:
    policy: Policy
    values: Values | None = None  # merged into the schema's minimal body
    prepare: Callable[[Scene, TestUser | None], Awaitable[None]] | None = None
    changes_owned_rows: bool = False  # a vote updates the counter on A's post, by design


OPERATIONS: dict[str, Expect] = {
    "health-live": Expect(Policy.PUBLIC),
    "health-ready": Expect(Policy.PUBLIC),
    "auth-register": Expect(Policy.ENTRY),
    "auth-login": Expect(Policy.ENTRY, owner_credentials),
    "auth-refresh": Expect(Policy.ENTRY, fresh_refresh_token),
    "auth-logout": Expect(Policy.ENTRY, fresh_refresh_token),
    "auth-logout-all": Expect(Policy.SELF),
    "users-read-me": Expect(Policy.SELF),
    "users-update-me": Expect(Policy.SELF, fixed(full_name="Changed by the caller")),
    "users-change-password": Expect(Policy.SELF, callers_password),
    "users-list": Expect(Policy.SUPERUSER),
    "users-read": Expect(Policy.SUPERUSER),
    "users-update": Expect(Policy.SUPERUSER, fixed(full_name="Changed by an admin")),
    "users-delete": Expect(Policy.SUPERUSER),
    "posts-list": Expect(Policy.PUBLIC),
    "posts-get": Expect(Policy.PUBLIC),
    "posts-create": Expect(Policy.AUTHENTICATED),
    "posts-update": Expect(Policy.OWNER, fixed(title="Changed")),
    "posts-replace": Expect(Policy.OWNER),
    "posts-delete": Expect(Policy.OWNER),
    "posts-vote": Expect(Policy.AUTHENTICATED, changes_owned_rows=True),
    "posts-unvote": Expect(Policy.AUTHENTICATED, prepare=vote_first, changes_owned_rows=True),
    "comments-list": Expect(Policy.PUBLIC),
    "comments-get": Expect(Policy.PUBLIC),
    "comments-list-by-post": Expect(Policy.PUBLIC),
    "comments-create": Expect(Policy.AUTHENTICATED, on_owners_post),
    "comments-update": Expect(Policy.OWNER, fixed(body="Changed")),
    "comments-replace": Expect(Policy.OWNER, on_owners_post),
    "comments-delete": Expect(Policy.OWNER),
}


async def callers_slug(_scene: Scene, caller: TestUser | None) -> dict[str, Any]:
    """A slug of the caller's own: the slug is unique."""
    return {"slug": f"slug-of-{caller.id if caller else 'nobody'}"}


async def callers_slugs(scene: Scene, caller: TestUser | None) -> list[Any]:
    return [{**await callers_slug(scene, caller), "name": "Many"}]


def items(build: Callable[[Scene], list[Any]]) -> Values:
    """A bulk body: these items (naming A's objects)."""

    async def values(scene: Scene, _caller: TestUser | None) -> list[Any]:
        return build(scene)

    return values


OPERATIONS |= {
    "tags-list": Expect(Policy.PUBLIC),
    "tags-get": Expect(Policy.PUBLIC),
    "tags-create": Expect(Policy.AUTHENTICATED, callers_slug),
    "tags-update": Expect(Policy.OWNER, fixed(name="Changed")),
    "tags-replace": Expect(Policy.OWNER, fixed(slug="a-s-tag")),
    "tags-delete": Expect(Policy.OWNER),
    "tags-upsert": Expect(Policy.OWNER, fixed(name="Changed")),
    "tags-create-many": Expect(Policy.AUTHENTICATED, callers_slugs),
    "tags-update-many": Expect(
        Policy.OWNER, items(lambda scene: [{"id": scene.tag["id"], "name": "Changed"}])
    ),
    "tags-delete-many": Expect(Policy.OWNER, items(lambda scene: [scene.tag["id"]])),
    "tags-upsert-many": Expect(
        Policy.OWNER, items(lambda scene: [{"slug": scene.tag["slug"], "name": "Changed"}])
    ),
    "posts-create-many": Expect(Policy.AUTHENTICATED, items(lambda _: [{"title": "Many"}])),
    "posts-update-many": Expect(
        Policy.OWNER, items(lambda scene: [{"id": scene.post["id"], "title": "Changed"}])
    ),
    "posts-delete-many": Expect(Policy.OWNER, items(lambda scene: [scene.post["id"]])),
    "comments-create-many": Expect(
        Policy.AUTHENTICATED, items(lambda scene: [{"post_id": scene.post["id"], "body": "Hi"}])
    ),
    "comments-update-many": Expect(
        Policy.OWNER, items(lambda scene: [{"id": scene.comment["id"], "body": "Changed"}])
    ),
    "comments-delete-many": Expect(Policy.OWNER, items(lambda scene: [scene.comment["id"]])),
}
OPERATIONS |= {
    "auth-stream-ticket": Expect(Policy.SELF),
    **{f"{resource}-changes": Expect(Policy.PUBLIC) for resource in ("posts", "comments", "tags")},
}
# Event streams never end, so the sweep cannot wait for their answer: who may open one, and
# what it shows, is tested in tests/crud/test_sync_live.py.
STREAMS = {f"{resource}-events" for resource in ("posts", "comments", "tags")}
# The frontend dialects serve the same operations with the same policies (their PUT writes the
# fields sent, as PATCH does).
OPERATIONS |= {
    f"{dialect}-{resource}-{action}": OPERATIONS[
        f"{resource}-{'update' if action == 'replace' else action}"
    ]
    for dialect in ("json-server", "simple-rest")
    for resource in ("posts", "comments", "tags")
    for action in ("list", "get", "create", "update", "replace", "delete")
}


@dataclass
class Operation:
    operation_id: str
    method: str
    path: str
    successes: list[int]  # an upsert documents two: 201 created, 200 replaced
    body_schema: dict[str, Any] | None = None
    form: bool = False
    path_params: list[str] = field(default_factory=list)


def operations(document: dict[str, Any]) -> dict[str, Operation]:
    found: dict[str, Operation] = {}
    for path, item in document["paths"].items():
        for method in METHODS:
            if method not in item:
                continue
            spec = item[method]
            assert "operationId" in spec, f"{method.upper()} {path} has no operationId"
            content = spec.get("requestBody", {}).get("content", {})
            media = next(iter(content), None)
            successes = [int(code) for code in spec["responses"] if code.startswith("2")]
            assert successes, f"{spec['operationId']}: documents no success"
            found[spec["operationId"]] = Operation(
                operation_id=spec["operationId"],
                method=method.upper(),
                path=path,
                successes=successes,
                body_schema=content[media]["schema"] if media else None,
                form=media == FORM,
                path_params=[p["name"] for p in spec.get("parameters", []) if p["in"] == "path"],
            )
    return found


def minimal(schema: dict[str, Any], document: dict[str, Any]) -> Any:
    """The smallest valid value of a JSON schema: required properties only."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return minimal(document["components"]["schemas"][name], document)
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            options = [s for s in schema[combinator] if s.get("type") != "null"]
            return minimal(options[0], document)
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: minimal(properties[name], document) for name in schema.get("required", [])}
    if kind == "string":
        if schema.get("format") == "email":
            return f"sweep{next(_emails)}@example.com"
        length = max(schema.get("minLength", 1), 8)
        return "x" * min(length, schema.get("maxLength", length))
    if kind == "integer":
        return max(schema.get("minimum", 1), 1)
    if kind == "number":
        return schema.get("minimum", 1)
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    raise AssertionError(f"no minimal value for {schema}")


def fill_path(operation: Operation, scene: Scene) -> str:
    """Each path parameter gets the id of A's object in the collection it follows."""
    path = operation.path
    ids = scene.path_ids()
    for name in operation.path_params:
        before = path.split("{" + name + "}")[0].rstrip("/").rsplit("/", 1)[-1]
        if before not in ids:
            pytest.fail(f"{operation.operation_id}: no object of A's for /{before}/{{{name}}}")
        path = path.replace("{" + name + "}", str(ids[before]))
    return path


def leaks(response: Response, scene: Scene, caller: TestUser | None) -> list[str]:
    """Private data in a response: password hashes anywhere, others' emails unless superuser."""
    text = response.text
    found = [marker for marker in ("hashed_password", "$2b$", "$2a$") if marker in text]
    if caller is None or caller is not scene.admin:
        others = scene.emails - ({caller.email} if caller else set())
        found += [email for email in sorted(others) if email in text]
    return found


def subject_of(response: Response) -> str:
    token = response.json()["access_token"]
    return str(jwt.decode(token, get_settings().SECRET_KEY, algorithms=["HS256"])["sub"])


def wrong_subject(expect: Expect, response: Response, caller: TestUser) -> list[str]:
    """A successful call by `caller` must be about the caller's own account and objects."""
    is_json = response.content and "json" in response.headers["content-type"]
    body = response.json() if is_json else None
    if not isinstance(body, dict):
        return []
    if expect.policy is Policy.SELF and body.get("id", caller.id) != caller.id:
        return [f"acted on user {body['id']}, not the caller {caller.id}"]
    if expect.policy is Policy.AUTHENTICATED:
        return [
            f"{name} is {body[name]}, not the caller {caller.id}"
            for name in ("owner_id", "author_id")
            if name in body and body[name] != caller.id
        ]
    return []


async def call(
    scene: Scene, operation: Operation, expect: Expect, role: str, document: dict[str, Any]
) -> list[str]:
    """One call by one role; what it got wrong (nothing, when it follows the policy)."""
    caller = scene.caller(role)
    if expect.prepare is not None:
        await expect.prepare(scene, caller)
    body = None
    if operation.body_schema is not None:
        body = minimal(operation.body_schema, document)
        if expect.values is not None:
            values = await expect.values(scene, caller)
            body = values if isinstance(body, list) else {**body, **values}  # bulk: the items
    before = await snapshot(scene.app)
    owned_before = await owned_rows(scene.app, scene.owner.id)
    path = fill_path(operation, scene)
    response = await scene.client.request(
        operation.method,
        path,
        headers=caller.headers if caller else {},
        data=body if operation.form else None,
        json=None if operation.form else body,
    )
    where = f"{role}: {operation.method} {path} -> {response.status_code}"
    failures = [f"{where} leaks {found}" for found in [leaks(response, scene, caller)] if found]
    expected = (
        [EXPECTED[expect.policy][role]] if EXPECTED[expect.policy][role] else operation.successes
    )
    if response.status_code not in expected:
        return [*failures, f"{where}, expected {expected}: {response.text[:200]}"]
    if response.status_code >= 400:
        if response.headers["content-type"] != PROBLEM:
            failures.append(f"{where} is not problem+json")
        if response.status_code == 401 and response.headers.get("www-authenticate") != "Bearer":
            failures.append(f"{where} has no WWW-Authenticate: Bearer")
        if await snapshot(scene.app) != before:
            failures.append(f"{where} was refused but changed the database")
    elif caller is not None:
        failures += [f"{where}: {problem}" for problem in wrong_subject(expect, response, caller)]
    issued = expect.policy is Policy.ENTRY and "access_token" in response.text
    if issued and subject_of(response) != str(scene.owner.id):
        failures.append(f"{where} issued tokens for someone other than A")
    touched_a = await owned_rows(scene.app, scene.owner.id) != owned_before
    if role != SUPERUSER and touched_a and not expect.changes_owned_rows:
        failures.append(f"{where} changed A's account or objects")
    return failures


@pytest.fixture
async def scene(app: FastAPI, client: AsyncClient, users: UserFactory) -> Scene:
    owner = await users.create()
    other = await users.create()
    admin = await users.create(superuser=True)
    blog = Blog(client)
    post = await blog.post(owner, content="A's post")
    comment = await blog.comment(owner, post)
    vote = await client.put(f"/api/v1/posts/{post['id']}/vote", headers=owner.headers)
    assert vote.status_code == 204
    tagged = await client.post(
        "/api/v1/tags", json={"slug": "a-s-tag", "name": "A's"}, headers=owner.headers
    )
    assert tagged.status_code == 201, tagged.text
    return Scene(app, client, owner, other, admin, post, comment, tagged.json())


async def test_every_operation_has_an_expectation(client: AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    served = set(operations(document))
    missing = sorted(served - set(OPERATIONS) - STREAMS)
    assert not missing, f"operations with no expected policy (add them to OPERATIONS): {missing}"
    stale = sorted((set(OPERATIONS) | STREAMS) - served)
    assert not stale, f"expectations for operations that no longer exist: {stale}"


@pytest.mark.parametrize("operation_id", sorted(OPERATIONS))
async def test_operation_follows_its_policy(scene: Scene, operation_id: str) -> None:
    document = (await scene.client.get("/openapi.json")).json()
    found = operations(document)
    if operation_id not in found:
        pytest.fail(f"{operation_id} is not in /openapi.json: remove it from OPERATIONS")
    operation, expect = found[operation_id], OPERATIONS[operation_id]
    failures = []
    for role in ROLES:  # in this order: the superuser's delete comes last
        failures += await call(scene, operation, expect, role, document)
    assert not failures, "\n".join(failures)
