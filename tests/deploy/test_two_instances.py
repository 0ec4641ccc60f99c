"""Two instances (the Procfile's web command, 2 workers each) on one migrated database, behind
the shipped nginx.conf with both in `upstream app`.

What one instance counts, stores, issues or signs holds on the other: login failures,
`Idempotency-Key` records, spent refresh tokens, cursors and ETags. Losing one instance under
load through nginx loses no acknowledged create and doubles none, and reads fail over.
"""

import queue
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from itertools import cycle, islice
from pathlib import Path
from typing import Any, LiteralString
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from tests.crud.formats import assert_problem
from tests.deploy.conftest import Web, released
from tests.deploy.services import (
    PASSWORD,
    app_env,
    command,
    free_port,
    login,
    more_upstreams,
    register,
    requires_nginx,
    running,
    running_nginx,
    unique_email,
    wait_for,
    wait_until_ready,
)

pytestmark = [pytest.mark.postgres, requires_nginx]

POSTS = "/api/v1/posts"
TIMEOUT = 30
MAX_FAILURES = 5  # LOGIN_MAX_FAILURES, set explicitly for both instances
LOAD_POSTS = 160
LOAD_CLIENTS = 8


@dataclass
class Pair:
    a: Web
    b: Web
    edge: str  # nginx, with both in its upstream
    nginx_error_log: Path
    database_url: str

    def rows(self, sql: LiteralString, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url) as connection:
            return connection.execute(sql, params).fetchall()


@pytest.fixture(scope="module")
def pair(create_database: Callable[[], str], logs: Path) -> Iterator[Pair]:
    """A database of the module's own (its throttle and sign-up counts start at zero)."""
    url = released(create_database())
    with ExitStack() as stack:
        webs = []
        for name in ("a", "b"):
            port = free_port()
            env = app_env(
                url, PORT=str(port), HOST="127.0.0.1", LOGIN_MAX_FAILURES=str(MAX_FAILURES)
            )
            service = stack.enter_context(running(command("web"), env, logs, f"two-{name}-{port}"))
            webs.append(Web(service, port))
        for web in webs:  # both start at once; two cores may make that slow
            wait_until_ready(web.service, web.port, timeout=120)
        a, b = webs
        nginx, port = stack.enter_context(running_nginx(a.port, edit=more_upstreams(b.port)))
        error_log = nginx.stdout_path.parent / "error.log"
        yield Pair(a, b, f"http://127.0.0.1:{port}", error_log, url)


def signed_up(web: Web, prefix: str) -> tuple[str, dict[str, Any]]:
    """A new account's email and its login's tokens."""
    email = unique_email(prefix)
    assert register(web.base_url, email).status_code == 201
    tokens = login(web.base_url, email)
    assert tokens.status_code == 200, tokens.text
    return email, tokens.json()


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def on(web: Web, url: str) -> str:
    """The same URL (path and query) on another instance."""
    return urlsplit(url)._replace(netloc=f"127.0.0.1:{web.port}").geturl()


def test_failed_logins_count_across_instances(pair: Pair) -> None:
    email, _tokens = signed_up(pair.a, "throttle")
    # An address of its own: the module's other logins come from 127.0.0.1.
    transport = httpx.HTTPTransport(local_address="127.0.0.31")
    with httpx.Client(transport=transport, timeout=TIMEOUT) as client:

        def attempt(web: Web, password: str) -> httpx.Response:
            form = {"username": email, "password": password}
            return client.post(f"{web.base_url}/api/v1/auth/login", data=form)

        # 3 on A and 2 on B: neither instance alone (nor any worker) has seen 5.
        alternating = islice(cycle((pair.a, pair.b)), MAX_FAILURES)
        failures = [attempt(web, "wrong-password") for web in alternating]
        assert [response.status_code for response in failures] == [401] * MAX_FAILURES
        for web in (pair.a, pair.b):  # refused before the password is checked, right or not
            refused = attempt(web, PASSWORD)
            assert_problem(refused, 429, "too-many-login-attempts")
            assert int(refused.headers["Retry-After"]) > 0


def test_an_idempotent_retry_on_the_other_instance_replays_the_first(pair: Pair) -> None:
    _email, tokens = signed_up(pair.a, "idempotent")
    key = uuid.uuid4().hex
    body = {"title": f"idempotent-{key}", "content": "once"}
    headers = {**bearer(tokens), "Idempotency-Key": key}
    first = httpx.post(f"{pair.a.base_url}{POSTS}", json=body, headers=headers, timeout=TIMEOUT)
    assert first.status_code == 201, first.text
    owner_id = first.json()["owner_id"]
    # Changed since: a replay returns the stored answer, not a fresh read of the row.
    edited = httpx.patch(
        first.headers["Location"], json={"title": "edited"}, headers=bearer(tokens), timeout=TIMEOUT
    )
    assert edited.status_code == 200, edited.text

    retry = httpx.post(f"{pair.b.base_url}{POSTS}", json=body, headers=headers, timeout=TIMEOUT)
    assert retry.status_code == first.status_code, retry.text
    assert retry.content == first.content
    assert retry.headers["ETag"] == first.headers["ETag"]
    assert urlsplit(retry.headers["Location"]).path == urlsplit(first.headers["Location"]).path
    assert pair.rows("SELECT title FROM posts WHERE owner_id = %s", owner_id) == [("edited",)]


def test_a_refresh_token_spent_on_one_instance_is_refused_on_the_other(pair: Pair) -> None:
    _email, tokens = signed_up(pair.a, "refresh")

    def refresh(web: Web, token: str) -> httpx.Response:
        url = f"{web.base_url}/api/v1/auth/refresh"
        return httpx.post(url, json={"refresh_token": token}, timeout=TIMEOUT)

    first = refresh(pair.a, tokens["refresh_token"])
    assert first.status_code == 200, first.text
    second = refresh(pair.b, first.json()["refresh_token"])  # issued on A, spent on B
    assert second.status_code == 200, second.text
    me = httpx.get(
        f"{pair.a.base_url}/api/v1/users/me", headers=bearer(second.json()), timeout=TIMEOUT
    )
    assert me.status_code == 200, me.text

    assert_problem(refresh(pair.b, tokens["refresh_token"]), 401, "invalid-token")
    assert_problem(refresh(pair.a, first.json()["refresh_token"]), 401, "invalid-token")


def test_cursors_and_etags_from_one_instance_hold_on_the_other(pair: Pair) -> None:
    _email, tokens = signed_up(pair.a, "paging")
    auth = bearer(tokens)
    with httpx.Client(headers=auth, timeout=TIMEOUT) as client:
        created = [
            client.post(f"{web.base_url}{POSTS}", json={"title": f"page {i}"})
            for i, web in zip(range(5), cycle((pair.a, pair.b)), strict=False)
        ]
        assert [response.status_code for response in created] == [201] * 5
        ids = [response.json()["id"] for response in created]
        query = {"owner_id": created[0].json()["owner_id"], "limit": 2}

        page = client.get(f"{pair.a.base_url}{POSTS}", params=query)
        assert page.status_code == 200, page.text
        seen = [item["id"] for item in page.json()["items"]]
        # A's next_cursor on B, then each cursor page's `next` link on the other instance.
        url = httpx.URL(
            f"{pair.b.base_url}{POSTS}", params={**query, "cursor": page.json()["next_cursor"]}
        )
        for next_web in cycle((pair.a, pair.b)):  # bounded: the pages end
            page = client.get(url)
            assert page.status_code == 200, page.text
            assert page.json()["total"] is None  # a cursor page
            seen += [item["id"] for item in page.json()["items"]]
            if "next" not in page.links:
                break
            url = httpx.URL(on(next_web, page.links["next"]["url"]))
        assert sorted(seen) == sorted(ids) and len(seen) == len(ids)

        on_a, on_b = (f"{web.base_url}{POSTS}/{ids[0]}" for web in (pair.a, pair.b))
        etag = client.get(on_a).headers["ETag"]
        unchanged = client.get(on_b, headers={"If-None-Match": etag})
        assert unchanged.status_code == 304 and unchanged.headers["ETag"] == etag
        edited = client.patch(on_b, json={"title": "edited on B"}, headers={"If-Match": etag})
        assert edited.status_code == 200, edited.text
        assert edited.headers["ETag"] != etag
        stale = client.patch(on_a, json={"title": "stale on A"}, headers={"If-Match": etag})
        assert_problem(stale, 412, "precondition-failed")
        assert (
            client.get(on_a, headers={"If-None-Match": edited.headers["ETag"]}).status_code == 304
        )


@dataclass
class Outcome:
    title: str
    started: float
    status: int | None  # None: no HTTP answer at all
    post_id: int | None


def create_posts(edge: str, headers: dict[str, str], titles: "queue.Queue[str]") -> list[Outcome]:
    """POST one post per title until none are left; one connection to nginx, kept alive."""
    outcomes: list[Outcome] = []
    with httpx.Client(headers=headers, timeout=TIMEOUT) as client:
        while True:
            try:
                title = titles.get_nowait()
            except queue.Empty:
                return outcomes
            started = time.monotonic()
            try:
                sent = client.post(
                    f"{edge}{POSTS}", json={"title": title}, headers={"X-Request-ID": title}
                )
            except httpx.TransportError:
                outcomes.append(Outcome(title, started, None, None))
                continue
            post_id = sent.json()["id"] if sent.status_code == 201 else None
            outcomes.append(Outcome(title, started, sent.status_code, post_id))


def test_killing_one_instance_mid_load_loses_and_doubles_no_create(pair: Pair) -> None:
    """Last in the module: it kills instance B for good."""
    _email, tokens = signed_up(pair.a, "load")
    prefix = f"load-{uuid.uuid4().hex[:8]}-"
    titles: queue.Queue[str] = queue.Queue()
    for i in range(LOAD_POSTS):
        titles.put(f"{prefix}{i:04d}")

    with ThreadPoolExecutor(LOAD_CLIENTS) as pool:
        futures = [
            pool.submit(create_posts, pair.edge, bearer(tokens), titles)
            for _ in range(LOAD_CLIENTS)
        ]
        wait_for(lambda: titles.qsize() <= LOAD_POSTS * 3 // 4, 120, "a quarter of the load")
        pair.b.service.kill()  # SIGKILL to its session: the master and both workers at once
        killed_at = time.monotonic()
        outcomes = [outcome for future in futures for outcome in future.result(timeout=300)]

    assert len(outcomes) == LOAD_POSTS
    statuses = Counter(outcome.status for outcome in outcomes)
    assert set(statuses) <= {201, 502, None}, statuses
    acknowledged = {o.post_id: o.title for o in outcomes if o.status == 201}
    unanswered = {o.title for o in outcomes if o.status != 201}

    rows = pair.rows("SELECT id, title FROM posts WHERE starts_with(title, %s)", prefix)
    per_title = Counter(title for _id, title in rows)
    assert [title for title, count in per_title.items() if count > 1] == []
    stored = dict(rows)
    assert {i: stored.get(i) for i in acknowledged} == acknowledged  # none lost
    assert len(acknowledged) <= len(rows) <= LOAD_POSTS
    # A row without a 2xx is only ever one whose answer was lost with the instance.
    assert set(per_title) - set(acknowledged.values()) <= unanswered, statuses

    # B had served some of the load; nginx passed no create to both instances.
    served = [
        {line["request_id"] for line in web.service.access_lines() if line["path"] == POSTS}
        for web in (pair.a, pair.b)
    ]
    assert served[1] & set(acknowledged.values()), "B served none of the load"
    assert not served[0] & served[1]
    after = [o for o in outcomes if o.started > killed_at]
    assert sum(o.status == 201 for o in after) > len(after) // 2, statuses

    # Reads keep succeeding through nginx, also when it tries the killed instance again (after
    # its fail_timeout, 10 s by default): it passes the GET on to the live one.
    read = f"{POSTS}/{next(iter(acknowledged))}"
    refused = f'request: "GET {read} HTTP/1.1", upstream: "http://127.0.0.1:{pair.b.port}{read}"'
    reads: list[int] = []
    with httpx.Client(timeout=TIMEOUT) as client:

        def failed_over() -> bool:
            reads.append(client.get(f"{pair.edge}{read}").status_code)
            return refused in pair.nginx_error_log.read_text(errors="replace")

        wait_for(failed_over, 60, "nginx to try the killed instance with a GET", interval=0.25)
    assert reads == [200] * len(reads)
