"""Delta sync never misses a change, whatever the commit order (issue 17's proof, PostgreSQL).

1. One app (the Procfile's gunicorn, 2 workers). For some seconds, API writers create, update
   (publishing and unpublishing), vote, delete and bulk-write posts, while long transactions
   opened directly on the database insert, update and delete posts and commit 0.2-1.5 s later,
   out of order, after syncs that began after them. An anonymous follower and an owner follower
   read `/posts/changes` all along. Once the writers stop and they have caught up, each copy
   equals exactly the posts visible to it: in the table (SQL) and in `GET /posts`.
2. Two app instances on one database: live feeds (`/posts/events`) on B get every write made
   through A, and resume with `Last-Event-ID` after a gap, missing nothing.
"""

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.deploy.services import (
    app_env,
    command,
    free_port,
    migrated_database,
    running,
    wait_until_ready,
)
from tests.sse import EventStream, open_events, sign_up

pytestmark = pytest.mark.postgres

POSTS = "/api/v1/posts"
CHANGES = f"{POSTS}/changes"
EVENTS = f"{POSTS}/events"
WRITE_SECONDS = 5
LONG_TRANSACTIONS = 4  # open at once, each committing in its own time
FOLLOW_LIMIT = 7  # small pages: rounds span many pages while writers commit between them
LIVE_TIMEOUT = 15
TIMEOUT = httpx.Timeout(30, connect=5)
WRITE_STATUSES = {200, 201, 204, 404}  # 404: a long transaction deleted the post meanwhile
VISIBLE_COLUMNS = "id, title, content, published, owner_id, votes, version, updated_at"

Row = dict[str, Any]


@pytest.fixture
def database_url() -> Iterator[str]:
    """A fresh database of the test's own, migrated by the Procfile's release command."""
    with migrated_database("sync") as url:
        yield url


@contextlib.contextmanager
def web(database_url: str, logs: Path, name: str) -> Iterator[str]:
    """The Procfile's web command (gunicorn, 2 workers); its URL. No traceback when it ends."""
    port = free_port()
    env = app_env(
        database_url, PORT=str(port), HOST="127.0.0.1", WEB_CONCURRENCY="2",
        LOG_LEVEL="WARNING", DB_POOL_SIZE="5",
    )  # fmt: skip
    with running(command("web"), env, logs, name) as service:
        wait_until_ready(service, port)
        yield f"http://127.0.0.1:{port}"
        assert "Traceback" not in service.stderr(), service.describe()


# --- A client's copy of the feed, and what it must equal ----------------------------------


@dataclass
class Replica:
    """A client's copy of the posts it may see: change records applied as the contract says
    (upsert items by data.id, remove deleted ids)."""

    rows: dict[int, Row] = field(default_factory=dict)  # id -> data
    etags: dict[int, str] = field(default_factory=dict)
    seen: set[int] = field(default_factory=set)  # every id it ever held
    deletions: set[int] = field(default_factory=set)  # every id it was told to remove
    items: int = 0
    removals: int = 0

    def apply(self, body: dict[str, Any]) -> None:
        assert set(body) == {"items", "deleted", "token", "has_more"}, body.keys()
        page_ids = [item["data"]["id"] for item in body["items"]] + body["deleted"]
        assert len(page_ids) == len(set(page_ids)), f"an id twice on one page: {body}"
        for item in body["items"]:
            post_id = item["data"]["id"]
            self.rows[post_id] = item["data"]
            self.etags[post_id] = item["etag"]
            self.seen.add(post_id)
        for post_id in body["deleted"]:
            self.rows.pop(post_id, None)
            self.etags.pop(post_id, None)
            self.deletions.add(post_id)
        self.items += len(body["items"])
        self.removals += len(body["deleted"])

    def comparable(self) -> dict[int, Row]:
        """Each row as the database stores it (the version is the ETag's first part)."""
        return {
            post_id: {
                "title": data["title"],
                "content": data["content"],
                "published": data["published"],
                "owner_id": data["owner_id"],
                "votes": data["votes"],
                "version": int(self.etags[post_id].strip('"').split(".")[0]),
                "updated_at": datetime.fromisoformat(data["updated_at"]),
            }
            for post_id, data in self.rows.items()
        }


def visible_in_table(database_url: str, viewer_id: int | None) -> dict[int, Row]:
    """The posts a viewer may read, straight from the table: published ones, and an owner's
    own drafts."""
    query = f"SELECT {VISIBLE_COLUMNS} FROM posts WHERE published OR owner_id = %s"
    with psycopg.connect(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(query, (viewer_id,))
        names = [column.name for column in cursor.description or ()]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return {row.pop("id"): row for row in rows}


def differences(copy: dict[int, Row], expected: dict[int, Row]) -> list[str]:
    """What differs, readably: ids missing or extra, and each differing field as (copy, want)."""
    lines = []
    if missing := sorted(expected.keys() - copy.keys()):
        lines.append(f"visible but missing from the copy: {missing}")
    if extra := sorted(copy.keys() - expected.keys()):
        lines.append(f"in the copy but not visible (deleted or hidden): {extra}")
    for post_id in sorted(copy.keys() & expected.keys()):
        mine, theirs = copy[post_id], expected[post_id]
        fields = sorted(mine.keys() | theirs.keys())
        changed = {k: (mine.get(k), theirs.get(k)) for k in fields if mine.get(k) != theirs.get(k)}
        if changed:
            lines.append(f"post {post_id} differs (copy, expected): {changed}")
    return lines


def assert_same(who: str, copy: dict[int, Row], expected: dict[int, Row], source: str) -> None:
    diff = differences(copy, expected)
    if diff:
        shown = "\n  ".join(diff[:40])
        pytest.fail(
            f"{who}'s copy ({len(copy)} posts) differs from {source} ({len(expected)} posts), "
            f"{len(diff)} differences:\n  {shown}",
            pytrace=False,
        )


async def listed(http: httpx.AsyncClient, headers: dict[str, str]) -> dict[int, Row]:
    """Every post `GET /posts` shows this caller, page by page (cursor)."""
    found: dict[int, Row] = {}
    params: dict[str, str | int] = {"limit": 100}
    while True:
        response = await http.get(POSTS, params=params, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        for item in page["items"]:
            assert item["id"] not in found, f"post {item['id']} listed twice"
            found[item["id"]] = item
        if page["next_cursor"] is None:
            return found
        params = {"limit": 100, "cursor": page["next_cursor"]}


# --- Test 1: writers in every commit order, followers of /changes -------------------------


@dataclass
class Follower:
    """Reads `/posts/changes` as a client does: a first round without `since`, then
    `since=<token>`, paging while `has_more`."""

    name: str
    http: httpx.AsyncClient
    headers: dict[str, str]
    replica: Replica = field(default_factory=Replica)
    token: str | None = None
    pages: int = 0
    rounds: int = 0

    async def page(self) -> bool:
        params: dict[str, str | int] = {"limit": FOLLOW_LIMIT}
        if self.token is not None:
            params["since"] = self.token
        response = await self.http.get(CHANGES, params=params, headers=self.headers)
        assert response.status_code == 200, f"{self.name}: {response.text}"
        body = response.json()
        self.replica.apply(body)
        self.token = body["token"]
        self.pages += 1
        return bool(body["has_more"])

    async def round(self) -> None:
        while await self.page():
            pass
        self.rounds += 1

    async def follow(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.round()
            await asyncio.sleep(0.02)

    async def catch_up(self) -> None:
        """Once every writer has committed: the round under way, then two complete ones (the
        first of which begins after the last commit)."""
        for _ in range(3):
            await self.round()


@dataclass
class ApiWriter:
    """One user writing their own posts through the API, in every way the API allows."""

    http: httpx.AsyncClient
    headers: dict[str, str]
    rng: random.Random
    own: list[int] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    serial: int = 0

    def text(self) -> str:
        self.serial += 1
        return f"{id(self) % 1000}-{self.serial}"

    def record(self, what: str, response: httpx.Response) -> bool:
        self.statuses[f"{what} {response.status_code}"] += 1
        assert response.status_code in WRITE_STATUSES, f"{what}: {response.text}"
        return response.status_code < 300

    def forget(self, *post_ids: int) -> None:
        self.own = [post_id for post_id in self.own if post_id not in post_ids]

    def published(self) -> bool:
        return self.rng.random() < 0.7

    async def step(self) -> None:
        rng, http, headers = self.rng, self.http, self.headers
        roll = rng.random()
        if len(self.own) < 3 or roll < 0.2:
            body = {"title": f"api {self.text()}", "published": self.published()}
            response = await http.post(POSTS, json=body, headers=headers)
            if self.record("create", response):
                self.own.append(response.json()["id"])
        elif roll < 0.32:
            items = [
                {"title": f"batch {self.text()}", "published": self.published()}
                for _ in range(rng.randint(2, 4))
            ]
            response = await http.post(f"{POSTS}/batch", json=items, headers=headers)
            if self.record("create-many", response):
                self.own += [item["data"]["id"] for item in response.json()["items"]]
        elif roll < 0.5:
            post_id = rng.choice(self.own)
            body = {"title": f"edit {self.text()}", "content": f"c {self.text()}"}
            response = await http.patch(f"{POSTS}/{post_id}", json=body, headers=headers)
            if not self.record("update", response):
                self.forget(post_id)
        elif roll < 0.68:
            post_id = rng.choice(self.own)
            body = {"published": rng.random() < 0.5}
            response = await http.patch(f"{POSTS}/{post_id}", json=body, headers=headers)
            if not self.record("publish", response):
                self.forget(post_id)
        elif roll < 0.76:
            chosen = rng.sample(self.own, 2)
            items = [{"id": post_id, "published": rng.random() < 0.5} for post_id in chosen]
            response = await http.patch(f"{POSTS}/batch", json=items, headers=headers)
            if not self.record("update-many", response):
                self.forget(*chosen)
        elif roll < 0.84:
            post_id = rng.choice(self.own)
            method = rng.choice(["PUT", "DELETE"])
            response = await http.request(method, f"{POSTS}/{post_id}/vote", headers=headers)
            self.record(f"vote {method}", response)
        elif roll < 0.93:
            post_id = rng.choice(self.own)
            response = await http.delete(f"{POSTS}/{post_id}", headers=headers)
            self.record("delete", response)
            self.forget(post_id)
        else:
            chosen = rng.sample(self.own, 2)
            response = await http.request("DELETE", f"{POSTS}/batch", json=chosen, headers=headers)
            self.record("delete-many", response)
            self.forget(*chosen)

    async def run(self, until: float) -> None:
        while time.monotonic() < until:
            await self.step()


INSERT = """
    INSERT INTO posts (title, content, published, owner_id, created_at, updated_at, version, votes)
    VALUES (%s, '', %s, %s, now(), now(), 1, 0) RETURNING id
"""
# A random post other than those kept, locked for this transaction (others are skipped).
CHOSEN = """
    SELECT id FROM posts WHERE NOT (id = ANY(%(keep)s)) ORDER BY random() LIMIT 1
    FOR UPDATE SKIP LOCKED
"""
UPDATE = f"""
    UPDATE posts SET title = %(title)s, published = NOT published, updated_at = now(),
        version = version + 1
    WHERE id = ({CHOSEN}) RETURNING id
"""
DELETE = f"DELETE FROM posts WHERE id = ({CHOSEN}) RETURNING id"


async def long_transactions(
    database_url: str, owners: list[int], keep: list[int], seed: int, until: float
) -> Counter[str]:
    """Transactions on the database itself: one write, then a 0.2-1.5 s wait before COMMIT.

    Several of these run at once, so they commit in another order than they began (and
    wrote); every follower's round in between begins after them and ends before they commit.
    Their `updated_at` (now(): the transaction's start) is older than rows committed before.
    """
    rng = random.Random(seed)
    done: Counter[str] = Counter()
    async with await psycopg.AsyncConnection.connect(database_url) as db:
        serial = 0
        while time.monotonic() < until:
            serial += 1
            roll = rng.random()
            if roll < 0.45:
                title = f"sql {seed}-{serial}"
                cursor = await db.execute(INSERT, (title, rng.random() < 0.7, rng.choice(owners)))
                what = "insert"
            elif roll < 0.85:
                cursor = await db.execute(UPDATE, {"title": f"sql {seed}-{serial}", "keep": keep})
                what = "update"
            else:
                cursor = await db.execute(DELETE, {"keep": keep})
                what = "delete"
            if await cursor.fetchone() is not None:
                done[what] += 1
            await asyncio.sleep(rng.uniform(0.2, 1.5))
            await db.commit()
    return done


async def create_post(
    http: httpx.AsyncClient, headers: dict[str, str], title: str, published: bool
) -> int:
    response = await http.post(
        POSTS, json={"title": title, "published": published}, headers=headers
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def set_published(
    http: httpx.AsyncClient, headers: dict[str, str], post_id: int, published: bool
) -> None:
    response = await http.patch(
        f"{POSTS}/{post_id}", json={"published": published}, headers=headers
    )
    assert response.status_code == 200, response.text


async def test_followers_copies_equal_the_visible_table_after_out_of_order_commits(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with web(database_url, tmp_path, "sync-web") as base_url:
        async with httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT) as http:
            users = [await sign_up(http, "", f"sync{n}") for n in range(3)]
            (owner_id, owner_headers), (_b_id, b_headers), _c = users
            owners = [user_id for user_id, _ in users]
            rng = random.Random(17)

            # Some state before the followers start, and sentinels with known fates:
            # B's published post gets unpublished (both followers must drop it, which only
            # a deletion record can do); B's draft and the owner's draft get published.
            for n in range(20):
                _, headers = users[n % 3]
                await create_post(http, headers, f"before {n}", published=rng.random() < 0.7)
            hidden_later = await create_post(http, b_headers, "hidden later", published=True)
            shown_later = await create_post(http, b_headers, "shown later", published=False)
            own_draft = await create_post(http, owner_headers, "own draft", published=False)
            sentinels = [hidden_later, shown_later, own_draft]

            # A transaction that began before the followers' first round and commits after it.
            early = await psycopg.AsyncConnection.connect(database_url)
            async with early:
                cursor = await early.execute(INSERT, ("early", True, owners[2]))
                early_row = await cursor.fetchone()
                assert early_row is not None
                early_id = int(early_row[0])

                anonymous = Follower("anonymous", http, {})
                owner = Follower("owner", http, owner_headers)
                for follower in (anonymous, owner):
                    await follower.round()
                assert hidden_later in anonymous.replica.rows
                assert own_draft in owner.replica.rows and own_draft not in anonymous.replica.rows
                assert early_id not in owner.replica.seen | anonymous.replica.seen
                await early.commit()

            stop = asyncio.Event()
            following = [asyncio.create_task(f.follow(stop)) for f in (anonymous, owner)]
            writers = [
                ApiWriter(http, headers, random.Random(seed))
                for seed, (_user_id, headers) in enumerate(users * 2)
            ]
            started = time.monotonic()
            until = started + WRITE_SECONDS

            async def sentinel_fates() -> None:
                await asyncio.sleep(WRITE_SECONDS * 0.6)
                await set_published(http, b_headers, hidden_later, False)
                await set_published(http, b_headers, shown_later, True)
                await set_published(http, owner_headers, own_draft, True)

            keep = [*sentinels, early_id]  # rows whose fate the test decides
            try:
                async with asyncio.TaskGroup() as group:  # one failure stops them all
                    for writer in writers:
                        group.create_task(writer.run(until))
                    direct = [
                        group.create_task(
                            long_transactions(database_url, owners, keep, seed, until)
                        )
                        for seed in range(LONG_TRANSACTIONS)
                    ]
                    group.create_task(sentinel_fates())
            finally:
                stop.set()
                await asyncio.gather(*following)
            elapsed = time.monotonic() - started

            # Every write has committed: catch up, then compare with what is visible.
            for follower in (anonymous, owner):
                await follower.catch_up()
            listed_anonymous = await listed(http, {})
            listed_owner = await listed(http, owner_headers)

    statuses: Counter[str] = Counter()
    for writer in writers:
        statuses.update(writer.statuses)
    sql_writes: Counter[str] = Counter()
    for task in direct:
        sql_writes.update(task.result())
    with capsys.disabled():
        summary = ", ".join(f"{key}: {n}" for key, n in sorted(statuses.items()))
        print(
            f"\nsync writers, {elapsed:.1f} s: API {summary}; long transactions {dict(sql_writes)}"
        )
        for follower in (anonymous, owner):
            replica = follower.replica
            print(
                f"  {follower.name} follower: {follower.rounds} rounds, {follower.pages} pages, "
                f"{replica.items} items, {replica.removals} deletions, "
                f"{len(replica.rows)} posts at the end"
            )

    assert sql_writes["insert"] and sql_writes["update"], "the long transactions wrote"
    assert early_id in anonymous.replica.rows and early_id in owner.replica.rows
    for follower in (anonymous, owner):
        assert hidden_later in follower.replica.deletions, follower.name
    for follower, viewer_id, listing in (
        (anonymous, None, listed_anonymous),
        (owner, owner_id, listed_owner),
    ):
        table = visible_in_table(database_url, viewer_id)
        assert_same(follower.name, follower.replica.comparable(), table, "the visible table")
        assert_same(follower.name, follower.replica.rows, listing, f"GET {POSTS}")


# --- Test 2: two instances, a live feed on the other one ----------------------------------


@dataclass
class LiveClient:
    """An event stream on one instance, applied to a replica; `wait_for` reads events until
    the replica equals the table (and has been told of every deletion), or fails."""

    name: str
    viewer_id: int | None
    database_url: str
    replica: Replica = field(default_factory=Replica)
    events: int = 0

    async def wait_for(self, stream: EventStream, deleted: set[int]) -> float:
        """Seconds until the replica equals what the table shows this viewer."""
        started = time.monotonic()
        expected = visible_in_table(self.database_url, self.viewer_id)
        deadline = started + LIVE_TIMEOUT
        while differences(self.replica.comparable(), expected) or deleted - self.replica.deletions:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                assert_same(self.name, self.replica.comparable(), expected, "the visible table")
                pytest.fail(
                    f"{self.name}: never told of deleting {deleted - self.replica.deletions}",
                    pytrace=False,
                )
            try:
                event = await stream.next(within=remaining)
            except AssertionError:
                continue  # the deadline: report the difference above
            assert event is not None, f"{self.name}: the stream ended ({stream.error!r})"
            assert event.event == "changes", event
            body = event.json()
            assert event.id == body["token"], event
            self.replica.apply(body)
            self.events += 1
        return time.monotonic() - started


async def test_live_feed_on_one_instance_gets_every_write_made_through_another(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with web(database_url, tmp_path, "sync-a") as a, web(database_url, tmp_path, "sync-b") as b:
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            owner_id, headers = await sign_up(http, a, "live")
            anonymous = LiveClient("anonymous", None, database_url)
            owner = LiveClient("owner", owner_id, database_url)

            async def write(method: str, path: str, body: Any = None) -> Any:
                response = await http.request(method, f"{a}{path}", json=body, headers=headers)
                assert response.status_code in {200, 201, 204}, response.text
                return response.json() if response.content else None

            # Phase 1: streams open on B, 30 posts and some edits through A.
            async with (
                open_events(http, f"{b}{EVENTS}") as anonymous_stream,
                open_events(http, f"{b}{EVENTS}", headers=headers) as owner_stream,
            ):
                for stream in (anonymous_stream, owner_stream):
                    await stream.ready()
                ids = []
                for n in range(12):
                    created = await write(
                        "POST", POSTS, {"title": f"one {n}", "published": n % 3 != 0}
                    )
                    ids.append(created["id"])
                batch = [{"title": f"many {n}", "published": n % 4 != 0} for n in range(18)]
                ids += [
                    item["data"]["id"]
                    for item in (await write("POST", f"{POSTS}/batch", batch))["items"]
                ]
                await write("PATCH", f"{POSTS}/{ids[1]}", {"title": "renamed", "published": False})
                await write("PATCH", f"{POSTS}/{ids[0]}", {"published": True})
                await write("PATCH", f"{POSTS}/batch", [{"id": ids[13], "content": "edited"}])
                await write("PUT", f"{POSTS}/{ids[2]}/vote")
                await write("DELETE", f"{POSTS}/{ids[4]}")
                await write("DELETE", f"{POSTS}/batch", [ids[14], ids[15]])
                deleted = {ids[4], ids[14], ids[15]}
                first_wait = [
                    await client.wait_for(stream, deleted)
                    for client, stream in ((anonymous, anonymous_stream), (owner, owner_stream))
                ]
                assert ids[1] in anonymous.replica.deletions  # unpublished: gone for anonymous
                assert ids[1] in owner.replica.rows  # the owner's draft now
                last_ids = (anonymous_stream.last_id, owner_stream.last_id)

            # Phase 2: written while no stream is open...
            assert ids[7] in anonymous.replica.rows
            gap = [(await write("POST", POSTS, {"title": f"gap {n}"}))["id"] for n in range(3)]
            await write("PATCH", f"{POSTS}/{ids[5]}", {"title": "changed in the gap"})
            await write("PATCH", f"{POSTS}/{ids[7]}", {"published": False})
            await write("DELETE", f"{POSTS}/{ids[9]}")
            deleted |= {ids[9]}

            # ...then streams resumed on B from the last event ids (the owner with a ticket).
            ticket_response = await http.post(f"{b}/api/v1/auth/stream-ticket", headers=headers)
            assert ticket_response.status_code in {200, 201}, ticket_response.text
            ticket = ticket_response.json()["ticket"]
            anonymous_resume, owner_resume = last_ids
            assert anonymous_resume and owner_resume
            async with (
                open_events(
                    http, f"{b}{EVENTS}", headers={"Last-Event-ID": anonymous_resume}
                ) as anonymous_stream,
                open_events(
                    http, f"{b}{EVENTS}", headers={"Last-Event-ID": owner_resume},
                    params={"ticket": ticket},
                ) as owner_stream,
            ):  # fmt: skip
                for stream in (anonymous_stream, owner_stream):
                    await stream.ready()
                after = [
                    (await write("POST", POSTS, {"title": f"after {n}"}))["id"] for n in range(3)
                ]
                await write("PATCH", f"{POSTS}/{gap[0]}", {"published": False})
                await write("DELETE", f"{POSTS}/{ids[10]}")
                deleted |= {ids[10]}
                second_wait = [
                    await client.wait_for(stream, deleted)
                    for client, stream in ((anonymous, anonymous_stream), (owner, owner_stream))
                ]

    with capsys.disabled():
        print(
            f"\nlive feed on the other instance: caught up in {max(first_wait):.2f} s, "
            f"after the resume in {max(second_wait):.2f} s; events: anonymous "
            f"{anonymous.events}, owner {owner.events}"
        )
    for post_id in [*gap, *after]:
        assert post_id in owner.replica.rows
    # Unpublished in the gap and after the resume: gone for anonymous, drafts for the owner.
    for post_id in (ids[7], gap[0]):
        assert post_id not in anonymous.replica.rows and post_id in anonymous.replica.deletions
        assert owner.replica.rows[post_id]["published"] is False
    assert owner.replica.rows[ids[5]]["title"] == "changed in the gap"
