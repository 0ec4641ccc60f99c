"""The benchmark's floor: the project's post endpoints written by hand.

Starlette, psycopg's async pool and orjson, one hand-written statement per read and the same
JSON as `/api/v1/posts` (same joins, counts, visibility, ordering, JWT check and user lookup
on writes). It is what Python can do; the project's figures are reported relative to it.

    DATABASE_URL=... SECRET_KEY=... gunicorn bench.floor:app -k uvicorn_worker.UvicornWorker
"""

import base64
import hashlib
import hmac
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import jwt
import orjson
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.seed import libpq_url

SECRET_KEY = os.environ["SECRET_KEY"]
POOL_SIZE = int(os.environ.get("FLOOR_POOL_SIZE", "10"))
MAX_ID = 2**31 - 1
DEFAULT_LIMIT, MAX_LIMIT = 20, 100
SORTS = {"created_at", "id", "votes", "title", "updated_at", "published", "owner_id"}
LIST_PARAMS = {"limit", "offset", "sort", "published", "cursor", "expand"}
WRITABLE = {"title": str, "content": str, "published": bool}
MAX_LENGTHS = {"title": 200, "content": 10_000}
BULK_MAX_ITEMS = 1000

# The owner's part of the project's tag: a digest of what the post shows of the owner.
DIGEST = (
    "CASE WHEN {id} IS NULL THEN 0 ELSE ('x' || substr(md5(json_build_array({id}, {name})"
    "::text), 1, 15))::bit(60)::bigint END"
)
COLUMNS = (
    "p.title, p.content, p.published, p.id, p.owner_id, u.id, u.full_name, p.votes,"
    " p.created_at, p.updated_at, p.version"
)
SELECT = f"SELECT {COLUMNS}, " + DIGEST.format(id="u.id", name="u.full_name")
# An offset page digests the rows it returns only (one SELECT would digest every skipped row).
PAGE_OUTER = (
    "SELECT q.title, q.content, q.published, q.id, q.owner_id, q.uid, q.full_name, q.votes,"
    " q.created_at, q.updated_at, q.version, "
    + DIGEST.format(id="q.uid", name="q.full_name")
    + ", q.total FROM (SELECT "
    + COLUMNS.replace("u.id,", "u.id AS uid,")
)
FROM = " FROM posts p LEFT JOIN users u ON u.id = p.owner_id"
GET_ANONYMOUS = SELECT + FROM + " WHERE p.id = %s AND p.published"
GET_VIEWER = SELECT + FROM + " WHERE p.id = %s AND (p.published OR p.owner_id = %s)"
USER = "SELECT is_active, is_superuser FROM users WHERE id = %s"
INSERT = (
    "WITH p AS (INSERT INTO posts (title, content, published, owner_id, votes, version,"
    " created_at, updated_at) VALUES (%s, %s, %s, %s, 0, 1, %s, %s) RETURNING *) "
    + SELECT
    + " FROM p LEFT JOIN users u ON u.id = p.owner_id"
)


# `expand=comments` (and `comments.author`): every comment of the page's posts in one
# statement, the first 20 of each post by id, with each post's count. Comments are visible when
# their post is, and these posts are: no further check.
NESTED_MAX = 20
CHILDREN = (
    "SELECT r.body, r.id, r.post_id, r.author_id, r.created_at, r.updated_at, r.version,"
    " r.total, r.aid, r.afull, {digest} FROM (SELECT c.*, {author}"
    " row_number() OVER (PARTITION BY c.post_id ORDER BY c.id) AS rank,"
    " count(*) OVER (PARTITION BY c.post_id) AS total FROM comments c {join}"
    " WHERE c.post_id = ANY(%s)) r WHERE r.rank <= {limit} ORDER BY r.post_id, r.rank"
)
CHILDREN_WITH_AUTHORS = CHILDREN.format(
    digest=DIGEST.format(id="r.aid", name="r.afull"),
    author="a.id AS aid, a.full_name AS afull,",
    join="LEFT JOIN users a ON a.id = c.author_id",
    limit=NESTED_MAX,
)
CHILDREN_ALONE = CHILDREN.format(
    digest="0", author="NULL::int AS aid, NULL::text AS afull,", join="", limit=NESTED_MAX
)
EXPANSIONS = {None: None, "comments": False, "owner,comments.author": True}  # -> authors?


class Problem(Exception):
    def __init__(self, status: int, detail: str) -> None:
        self.status, self.detail = status, detail


class Viewer:
    __slots__ = ("id", "is_superuser")

    def __init__(self, user_id: int | None, is_superuser: bool = False) -> None:
        self.id, self.is_superuser = user_id, is_superuser


ANONYMOUS = Viewer(None)


def shape(row: tuple[Any, ...]) -> dict[str, Any]:
    owner = {"id": row[5], "full_name": row[6]} if row[5] is not None else None
    return {
        "title": row[0],
        "content": row[1],
        "published": row[2],
        "id": row[3],
        "owner_id": row[4],
        "owner": owner,
        "votes": row[7],
        "created_at": row[8],
        "updated_at": row[9],
    }


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_UTC_Z)


def json_response(
    body: bytes, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(body, status, headers, media_type="application/json")


def etag(row: tuple[Any, ...]) -> str:
    """The project's tag: the post's version and the digest of the owner's id and name."""
    return f'"{row[10]}.{row[11]}"'


def item_response(row: tuple[Any, ...], status: int = 200) -> Response:
    return json_response(dumps(shape(row)), status, {"ETag": etag(row)})


def comment(row: tuple[Any, ...], authors: bool) -> dict[str, Any]:
    item = {
        "body": row[0],
        "id": row[1],
        "post_id": row[2],
        "author_id": row[3],
        "created_at": row[4],
        "updated_at": row[5],
    }
    if authors:
        item["author"] = {"id": row[8], "full_name": row[9]} if row[8] is not None else None
    return item


def digest_text(text: str) -> int:
    return int(hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()[:15], 16)


async def nest_comments(
    connection: AsyncConnection[Any], items: list[dict[str, Any]], authors: bool
) -> list[int]:
    """Add `comments` and `comments_total` to each post; the ETag digest of each."""
    sql = CHILDREN_WITH_AUTHORS if authors else CHILDREN_ALONE
    rows = await (await connection.execute(sql, ([item["id"] for item in items],))).fetchall()
    found: dict[int, list[dict[str, Any]]] = {}
    totals: dict[int, int] = {}
    shown: dict[int, list[tuple[Any, ...]]] = {}
    for row in rows:
        found.setdefault(row[2], []).append(comment(row, authors))
        totals[row[2]] = row[7]
        state = (row[1], row[6], row[10]) if authors else (row[1], row[6])
        shown.setdefault(row[2], []).append(state)
    digests = []
    for item in items:
        item["comments"] = found.get(item["id"], [])
        item["comments_total"] = totals.get(item["id"], 0)
        digests.append(digest_text(repr((shown.get(item["id"], []), item["comments_total"]))))
    return digests


def expansion(request: Request) -> bool | None:
    """None: no expansion; else whether comments nest their authors."""
    value = request.query_params.get("expand")
    if value not in EXPANSIONS:
        raise Problem(422, f"expand {value!r} is not one the floor serves")
    return EXPANSIONS[value]


def problem(error: Problem) -> Response:
    body = orjson.dumps({"type": "about:blank", "status": error.status, "detail": error.detail})
    return Response(body, error.status, media_type="application/problem+json")


# -- the caller ----------------------------------------------------------------------------


async def viewer_of(request: Request, connection: AsyncConnection[Any], required: bool) -> Viewer:
    """JWT HS256 check and a user lookup, as the project's `get_optional_user` does."""
    header = request.headers.get("authorization")
    if header is None or not header.lower().startswith("bearer "):
        if required:
            raise Problem(401, "Not authenticated")
        return ANONYMOUS
    try:
        claims = jwt.decode(
            header[7:],
            SECRET_KEY,
            algorithms=["HS256"],
            options={"require": ["sub", "exp", "iat", "type"]},
        )
    except jwt.PyJWTError:
        raise Problem(401, "The access token is invalid or expired") from None
    subject = claims["sub"]
    if claims["type"] != "access" or not isinstance(subject, str) or not subject.isdigit():
        raise Problem(401, "The access token is invalid or expired")
    cursor = await connection.execute(USER, (int(subject),))
    user = await cursor.fetchone()
    if user is None or not user[0]:
        raise Problem(401, "The access token is invalid or expired")
    return Viewer(int(subject), user[1])


def visibility(viewer: Viewer, args: list[Any]) -> str:
    if viewer.is_superuser:
        return "TRUE"
    if viewer.id is None:
        return "p.published"
    args.append(viewer.id)
    return "(p.published OR p.owner_id = %s)"


def item_id_of(request: Request) -> int:
    raw = request.path_params["item_id"]
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_ID:
        raise Problem(422, "item_id must be an integer from 1 to 2147483647")
    return int(raw)


# -- list parameters and cursors -----------------------------------------------------------


def parse_int(value: str | None, name: str, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    if not value.isdigit() or not low <= int(value) <= high:
        raise Problem(422, f"{name} must be an integer from {low} to {high}")
    return int(value)


def parse_sort(value: str) -> list[tuple[str, bool]]:
    keys = []
    for item in value.split(","):
        name = item.strip()
        descending = name.startswith("-")
        name = name.removeprefix("-")
        if name not in SORTS:
            raise Problem(422, f"cannot sort by {name!r}")
        keys.append((name, descending))
    if "id" not in (name for name, _ in keys):
        keys.append(("id", keys[0][1]))  # the project's tie-break: id, in the first direction
    return keys


def sign(payload: bytes) -> str:
    return hmac.new(SECRET_KEY.encode(), payload, hashlib.sha256).hexdigest()[:32]


def encode_cursor(row: tuple[Any, ...], keys: list[tuple[str, bool]], scope: str) -> str:
    positions = {"title": 0, "published": 2, "id": 3, "owner_id": 4, "votes": 7}
    positions |= {"created_at": 8, "updated_at": 9}
    values = [row[positions[name]] for name, _ in keys]
    payload = dumps([scope, values])
    return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + sign(payload)


def decode_cursor(cursor: str, keys: list[tuple[str, bool]], scope: str) -> list[Any]:
    encoded, _, signature = cursor.partition(".")
    try:
        payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        if not hmac.compare_digest(sign(payload), signature):
            raise ValueError("bad signature")
        made_for, values = orjson.loads(payload)
    except ValueError:
        raise Problem(422, "The cursor is invalid") from None
    if made_for != scope or len(values) != len(keys):
        raise Problem(422, "The cursor was made for another sort or filter")
    return [
        datetime.fromisoformat(value) if name.endswith("_at") else value
        for (name, _), value in zip(keys, values, strict=True)
    ]


def keyset(keys: list[tuple[str, bool]], values: list[Any], args: list[Any]) -> str:
    """Rows after `values` in `keys` order: a row comparison when the directions agree (it
    walks the (sort, id) index), else (a > x) OR (a = x AND (b > y OR ...))."""
    directions = {descending for _, descending in keys}
    if len(directions) == 1:
        args.extend(values)
        columns = ", ".join(f"p.{name}" for name, _ in keys)
        marks = ", ".join("%s" for _ in keys)
        return f"({columns}) {'<' if directions == {True} else '>'} ({marks})"
    (name, descending), value = keys[0], values[0]
    after = f"p.{name} {'<' if descending else '>'} %s"
    args.append(value)
    if len(keys) == 1:
        return after
    args.append(value)
    rest = keyset(keys[1:], values[1:], args)
    return f"({after} OR (p.{name} = %s AND {rest}))"


# -- endpoints -----------------------------------------------------------------------------


async def get_post(request: Request) -> Response:
    try:
        item_id = item_id_of(request)
        authors = expansion(request)
        async with request.app.state.pool.connection() as connection:
            viewer = await viewer_of(request, connection, required=False)
            if viewer.is_superuser:
                cursor = await connection.execute(SELECT + FROM + " WHERE p.id = %s", (item_id,))
            elif viewer.id is None:
                cursor = await connection.execute(GET_ANONYMOUS, (item_id,))
            else:
                cursor = await connection.execute(GET_VIEWER, (item_id, viewer.id))
            row = await cursor.fetchone()
            if row is None:
                raise Problem(404, f"Post {item_id} not found")
            if authors is None:
                return item_response(row)
            item = shape(row)
            [children] = await nest_comments(connection, [item], authors)
        return json_response(dumps(item), headers={"ETag": f'"{row[10]}.{row[11]}.{children}"'})
    except Problem as error:
        return problem(error)


async def list_posts(request: Request) -> Response:
    try:
        return await _list_posts(request)
    except Problem as error:
        return problem(error)


async def _list_posts(request: Request) -> Response:
    query = request.query_params
    unknown = set(query) - LIST_PARAMS
    if unknown:
        raise Problem(422, f"unknown query parameter(s) {', '.join(sorted(unknown))}")
    limit = parse_int(query.get("limit"), "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = parse_int(query.get("offset"), "offset", 0, 0, 2**63 - 1)
    sort = query.get("sort", "-created_at")
    keys = parse_sort(sort)
    published = query.get("published")
    if published not in (None, "true", "false"):
        raise Problem(422, "published must be true or false")
    cursor = query.get("cursor")
    if cursor is not None and "offset" in query:
        raise Problem(422, "cursor and offset cannot be combined")
    authors = expansion(request)
    order = ", ".join(f"p.{name} DESC" if desc else f"p.{name}" for name, desc in keys)
    scope = f"{sort}|{published}"
    async with request.app.state.pool.connection() as connection:
        viewer = await viewer_of(request, connection, required=False)
        args: list[Any] = []
        where = [visibility(viewer, args)]
        if published is not None:
            where.append("p.published = %s")
            args.append(published == "true")
        if cursor is not None:
            where.append(keyset(keys, decode_cursor(cursor, keys, scope), args))
            sql = f"{SELECT}{FROM} WHERE {' AND '.join(where)} ORDER BY {order} LIMIT %s"
            rows = await (await connection.execute(sql, [*args, limit + 1])).fetchall()
            total, more = None, len(rows) > limit
            rows = rows[:limit]
        else:
            # The exact total in the same round trip: a scalar subquery runs once (an
            # InitPlan); count(*) OVER () would buffer every matching row with its content.
            condition = " AND ".join(where)
            sql = (
                f"{PAGE_OUTER}, (SELECT count(*) FROM posts p WHERE {condition}) AS total{FROM}"
                f" WHERE {condition} ORDER BY {order} LIMIT %s OFFSET %s) q"
                f" ORDER BY {order.replace('p.', 'q.')}"
            )
            rows = await (await connection.execute(sql, [*args, *args, limit, offset])).fetchall()
            if rows:
                total = rows[0][12]
            else:
                count = f"SELECT count(*){FROM} WHERE {' AND '.join(where)}"
                total = (await (await connection.execute(count, args)).fetchone())[0]  # type: ignore[index]
            more = offset + len(rows) < total
        items = [shape(row) for row in rows]
        if authors is not None and items:
            await nest_comments(connection, items, authors)
    next_cursor = encode_cursor(rows[-1], keys, scope) if more and rows else None
    body = dumps(
        {
            "items": items,
            "total": total,
            "total_estimated": False,
            "limit": limit,
            "offset": None if cursor is not None else offset,
            "next_cursor": next_cursor,
        }
    )
    headers = {}
    url = request.url
    links = []
    if cursor is not None:
        if next_cursor:
            target = url.remove_query_params("offset").include_query_params(cursor=next_cursor)
            links.append(f'<{target}>; rel="next"')
    else:
        headers["X-Total-Count"] = str(total)
        if offset + limit < total:
            links.append(f'<{url.include_query_params(offset=offset + limit)}>; rel="next"')
        if offset > 0:
            links.append(f'<{url.include_query_params(offset=max(offset - limit, 0))}>; rel="prev"')
    if links:
        headers["Link"] = ", ".join(links)
    return json_response(body, headers=headers)


async def list_posts_json_server(request: Request) -> Response:
    """`/api/compat/json-server/posts?_start=&_end=`: the same page as a bare array."""
    try:
        query = request.query_params
        unknown = set(query) - {"_start", "_end"}
        if unknown:
            raise Problem(422, f"unknown query parameter(s) {', '.join(sorted(unknown))}")
        start = parse_int(query.get("_start"), "_start", 0, 0, 2**31 - 1)
        end = parse_int(query.get("_end"), "_end", start + MAX_LIMIT, start + 1, start + MAX_LIMIT)
        async with request.app.state.pool.connection() as connection:
            viewer = await viewer_of(request, connection, required=False)
            args: list[Any] = []
            condition = visibility(viewer, args)
            sql = (
                f"{PAGE_OUTER}, (SELECT count(*) FROM posts p WHERE {condition}) AS total{FROM}"
                f" WHERE {condition} ORDER BY p.created_at DESC, p.id DESC LIMIT %s OFFSET %s) q"
                " ORDER BY q.created_at DESC, q.id DESC"
            )
            params = [*args, *args, end - start, start]
            rows = await (await connection.execute(sql, params)).fetchall()
            if rows:
                total = rows[0][12]
            else:
                count = f"SELECT count(*){FROM} WHERE {condition}"
                total = (await (await connection.execute(count, args)).fetchone())[0]  # type: ignore[index]
        body = dumps([shape(row) for row in rows])
        return json_response(body, headers={"X-Total-Count": str(total)})
    except Problem as error:
        return problem(error)


async def json_of(request: Request) -> Any:
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise Problem(422, "The body is not valid JSON") from None


async def body_of(request: Request, partial: bool) -> dict[str, Any]:
    """The project's PostCreate / PostUpdate rules, by hand."""
    return checked_body(await json_of(request), partial)


async def items_of(request: Request) -> list[Any]:
    """A bulk body: a list of 1 to BULK_MAX_ITEMS items."""
    data = await json_of(request)
    if not isinstance(data, list) or not 1 <= len(data) <= BULK_MAX_ITEMS:
        raise Problem(422, f"The body must be a list of 1 to {BULK_MAX_ITEMS} items")
    return data


def checked_body(data: Any, partial: bool) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise Problem(422, "The body must be an object")
    unknown = set(data) - set(WRITABLE)
    if unknown:
        raise Problem(422, f"unknown field(s) {', '.join(sorted(unknown))}")
    if not partial:
        if "title" not in data:
            raise Problem(422, "title is required")
        data = {"content": "", "published": True} | data
    for name, value in data.items():
        kind = WRITABLE[name]
        if not isinstance(value, kind):
            raise Problem(422, f"{name} must be a {kind.__name__}")
        shortest = 1 if name == "title" else 0
        if kind is str and not shortest <= len(value) <= MAX_LENGTHS[name]:
            raise Problem(422, f"{name} must have {shortest} to {MAX_LENGTHS[name]} characters")
    return data  # type: ignore[no-any-return]


INSERT_MANY = (
    "WITH p AS (INSERT INTO posts (title, content, published, owner_id, votes, version,"
    " created_at, updated_at) SELECT unnest(%s::text[]), unnest(%s::text[]),"
    " unnest(%s::bool[]), %s, 0, 1, %s, %s RETURNING *) "
    + SELECT
    + " FROM p LEFT JOIN users u ON u.id = p.owner_id ORDER BY p.id"
)


async def create_posts(request: Request) -> Response:
    """`POST /api/v1/posts/batch`: every item checked as a single create's body, then one
    INSERT of them all."""
    try:
        data = await items_of(request)
        items = [checked_body(item, partial=False) for item in data]
        async with request.app.state.pool.connection() as connection:
            viewer = await viewer_of(request, connection, required=True)
            now = datetime.now(UTC)
            columns = [[item[name] for item in items] for name in ("title", "content", "published")]
            rows = await (
                await connection.execute(INSERT_MANY, (*columns, viewer.id, now, now))
            ).fetchall()
        written = [{"etag": etag(row), "data": shape(row)} for row in rows]
        return json_response(dumps({"items": written}), 201)
    except Problem as error:
        return problem(error)


UPSERT_TAGS = (
    "INSERT INTO tags (slug, name, owner_id, version, created_at, updated_at)"
    " SELECT unnest(%s::text[]), unnest(%s::text[]), %s, 1, %s, %s"
    " ON CONFLICT (slug) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at,"
    " version = tags.version + 1 WHERE tags.owner_id = %s"
    " RETURNING slug, name, id, owner_id, created_at, updated_at, version"
)


async def upsert_tags(request: Request) -> Response:
    """`PUT /api/v1/tags/batch`: each tag created or replaced by its slug in one statement,
    never another user's (then nothing is written: 403)."""
    try:
        data = await items_of(request)
        for item in data:
            if not isinstance(item, dict) or set(item) != {"slug", "name"}:
                raise Problem(422, "each item is {slug, name}")
            if not all(isinstance(value, str) and 1 <= len(value) <= 64 for value in item.values()):
                raise Problem(422, "slug and name are 1 to 64 characters")
        if len({item["slug"] for item in data}) != len(data):
            raise Problem(422, "each slug may appear once")
        async with request.app.state.pool.connection() as connection, connection.transaction():
            viewer = await viewer_of(request, connection, required=True)
            now = datetime.now(UTC)
            slugs, names = [item["slug"] for item in data], [item["name"] for item in data]
            args = (slugs, names, viewer.id, now, now, viewer.id)
            rows = await (await connection.execute(UPSERT_TAGS, args)).fetchall()
            if len(rows) != len(data):
                raise Problem(403, "a tag of another user has one of these slugs")
        by_slug = {row[0]: row for row in rows}
        written = [
            {
                "etag": f'"{row[6]}"',
                "created": row[6] == 1,
                "data": dict(
                    zip(
                        ("slug", "name", "id", "owner_id", "created_at", "updated_at"),
                        row[:6],
                        strict=True,
                    )
                ),
            }
            for row in (by_slug[slug] for slug in slugs)
        ]
        return json_response(dumps({"items": written}))
    except Problem as error:
        return problem(error)


async def create_post(request: Request) -> Response:
    try:
        data = await body_of(request, partial=False)
        async with request.app.state.pool.connection() as connection:
            viewer = await viewer_of(request, connection, required=True)
            now = datetime.now(UTC)
            values = (data["title"], data["content"], data["published"], viewer.id, now, now)
            row = await (await connection.execute(INSERT, values)).fetchone()
        assert row is not None
        response = item_response(row, 201)
        response.headers["Location"] = str(request.url_for("post", item_id=str(row[3])))
        return response
    except Problem as error:
        return problem(error)


async def update_post(request: Request) -> Response:
    try:
        item_id = item_id_of(request)
        changes = await body_of(request, partial=True)
        async with request.app.state.pool.connection() as connection:
            viewer = await viewer_of(request, connection, required=True)
            sets = [f"{name} = %s" for name in changes]  # names checked against WRITABLE
            args: list[Any] = [*changes.values(), datetime.now(UTC), item_id]
            where = ["p.id = %s", visibility(viewer, args)]
            if not viewer.is_superuser:
                where.append("p.owner_id = %s")
                args.append(viewer.id)
            sql = (
                f"WITH p AS (UPDATE posts p SET {', '.join([*sets, 'updated_at = %s'])},"
                f" version = p.version + 1 WHERE {' AND '.join(where)} RETURNING p.*) "
                f"{SELECT} FROM p LEFT JOIN users u ON u.id = p.owner_id"
            )
            row = await (await connection.execute(sql, args)).fetchone()
            if row is None:
                raise await refusal(connection, item_id, viewer)
        return item_response(row)
    except Problem as error:
        return problem(error)


async def refusal(connection: AsyncConnection[Any], item_id: int, viewer: Viewer) -> Problem:
    """An update touched nothing: 404 if the post is invisible, else 403."""
    args: list[Any] = [item_id]
    check = f"SELECT 1 FROM posts p WHERE p.id = %s AND {visibility(viewer, args)}"
    found = await (await connection.execute(check, args)).fetchone()
    if found is None:
        return Problem(404, f"Post {item_id} not found")
    return Problem(403, "You may not change this Post")


# -- the change feed (issue 17) ---------------------------------------------------------------
# The project's sync tokens (app/crud/sync/token.py, app/crud/signed.py), by hand: JSON
# [resource, stamp, row_id, floor, initial, taken_at] plus the first 12 bytes of its
# HMAC-SHA256 under "sync:<SECRET_KEY>", base64url without padding. The floor reads the
# project's tokens and the project reads the floor's (bench/compare.py checks both ways).
SYNC_KEY = f"sync:{SECRET_KEY}".encode()
SYNC_SIGNATURE_BYTES = 12
SYNC_RETENTION_SECONDS = int(os.environ.get("SYNC_RETENTION_DAYS", "30")) * 86_400
BEFORE_ANY_STAMP, AFTER_ANY_ID = -1, 2**63 - 1
CHANGES_DEFAULT_LIMIT, CHANGES_MAX_LIMIT = 100, 1000
# One statement, as the project's: the changes after the position in (stamp, id) order (rows
# stamped by the sync_stamp trigger, and tombstones unless it is the first round), each
# changed row joined to its representation only if the viewer may see it (else: deleted for
# that viewer), and the snapshot's xmin, the floor the next round starts from.
CHANGED_ROWS = (
    "SELECT p.id, p.sync_xid AS x, FALSE AS gone FROM posts p WHERE (p.sync_xid, p.id) > (%s, %s)"
)
CHANGED_TOMBSTONES = (
    " UNION ALL SELECT t.row_id, t.xid, TRUE FROM sync_tombstones t"
    " WHERE t.resource = 'posts' AND (t.xid, t.row_id) > (%s, %s)"
)
CHANGES = (
    "WITH changed AS ({changed} ORDER BY x, id LIMIT %s) "
    + SELECT
    + ", s.floor, c.x, c.id FROM (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
    " AS floor) s LEFT JOIN (changed c LEFT JOIN (posts p LEFT JOIN users u"
    " ON u.id = p.owner_id) ON p.id = c.id AND NOT c.gone AND {visible}) ON TRUE ORDER BY c.x, c.id"
)


def seal_sync(fields: list[Any]) -> str:
    payload = orjson.dumps(fields)
    signature = hmac.new(SYNC_KEY, payload, hashlib.sha256).digest()[:SYNC_SIGNATURE_BYTES]
    return base64.urlsafe_b64encode(payload + signature).decode().rstrip("=")


def unseal_sync(text: str) -> tuple[int, int, int | None, bool, int]:
    """(stamp, row_id, floor, initial, taken_at) of a posts token; 422 or 410 otherwise."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        payload, signature = raw[:-SYNC_SIGNATURE_BYTES], raw[-SYNC_SIGNATURE_BYTES:]
        expected = hmac.new(SYNC_KEY, payload, hashlib.sha256).digest()[:SYNC_SIGNATURE_BYTES]
        if len(raw) <= SYNC_SIGNATURE_BYTES or not hmac.compare_digest(signature, expected):
            raise ValueError("bad signature")
        resource, stamp, row_id, floor, initial, taken_at = orjson.loads(payload)
        position = (int(stamp), int(row_id), None if floor is None else int(floor))
        taken_at = int(taken_at)
    except (ValueError, TypeError):
        raise Problem(422, "the sync token is not valid") from None
    if resource != "posts":
        raise Problem(422, f"the sync token was made for {resource}, not posts")
    if taken_at < time.time() - SYNC_RETENTION_SECONDS:
        raise Problem(410, "the sync token is older than the retention")
    return (*position, bool(initial), taken_at)


async def post_changes(request: Request) -> Response:
    """`GET /api/v1/posts/changes?since=&limit=`: the project's change feed, by hand."""
    try:
        query = request.query_params
        limit = parse_int(query.get("limit"), "limit", CHANGES_DEFAULT_LIMIT, 1, CHANGES_MAX_LIMIT)
        since = query.get("since")
        # No `since`: the first round, every visible row and no tombstones.
        start = (BEFORE_ANY_STAMP, AFTER_ANY_ID, None, True, int(time.time()))
        stamp, row_id, floor, initial, taken_at = start if since is None else unseal_sync(since)
        async with request.app.state.pool.connection() as connection:
            viewer = await viewer_of(request, connection, required=False)
            args: list[Any] = []
            if initial:
                seen = visibility(viewer, args)
                changed = f"{CHANGED_ROWS} AND {seen}"
                args[0:0] = [stamp, row_id]  # the row comparison comes first in the text
            else:
                changed = CHANGED_ROWS + CHANGED_TOMBSTONES
                args += [stamp, row_id, stamp, row_id]
            args.append(limit + 1)
            sql = CHANGES.format(changed=changed, visible=visibility(viewer, args))
            rows = await (await connection.execute(sql, args)).fetchall()
        # row: the post's 12 columns (p.id None: deleted, or not visible), floor, stamp, row id
        changed_rows = [row for row in rows if row[14] is not None]
        has_more = len(changed_rows) > limit
        changed_rows = changed_rows[:limit]
        latest: dict[int, tuple[Any, ...] | None] = {}
        for row in changed_rows:  # a row's last change on the page wins
            latest.pop(row[14], None)
            latest[row[14]] = row if row[3] is not None else None
        items = [{"etag": etag(row), "data": shape(row)} for row in latest.values() if row]
        deleted = [key for key, row in latest.items() if row is None]
        if floor is None:  # this page began the round
            floor, taken_at = rows[0][12], int(time.time())
        if has_more:
            last = changed_rows[-1]
            token = ["posts", last[13], last[14], floor, initial, taken_at]
        else:
            token = ["posts", floor - 1, AFTER_ANY_ID, None, False, taken_at]
        body = {"items": items, "deleted": deleted, "token": seal_sync(token), "has_more": has_more}
        return json_response(dumps(body))
    except Problem as error:
        return problem(error)


async def health(request: Request) -> Response:
    async with request.app.state.pool.connection() as connection:
        await connection.execute("SELECT 1")
    return json_response(b'{"status":"ok"}')


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    pool = AsyncConnectionPool(
        libpq_url(os.environ["DATABASE_URL"]),
        min_size=POOL_SIZE,
        max_size=POOL_SIZE,
        kwargs={"autocommit": True, "options": "-c TimeZone=UTC"},
        open=False,
    )
    await pool.open(wait=True)
    app.state.pool = pool
    yield
    await pool.close()


app = Starlette(
    routes=[
        Route("/health/ready", health),
        Route("/api/v1/posts", list_posts, methods=["GET"]),
        Route("/api/v1/posts", create_post, methods=["POST"]),
        Route("/api/v1/posts/batch", create_posts, methods=["POST"]),
        Route("/api/v1/posts/changes", post_changes, methods=["GET"]),
        Route("/api/v1/tags/batch", upsert_tags, methods=["PUT"]),
        Route("/api/v1/posts/{item_id}", get_post, methods=["GET"], name="post"),
        Route("/api/v1/posts/{item_id}", update_post, methods=["PATCH"]),
        Route("/api/compat/json-server/posts", list_posts_json_server, methods=["GET"]),
    ],
    lifespan=lifespan,
)
