"""Tokens and owned post ids for the write benchmarks, obtained the way a client would.

Logs the seeded users in through the project's `POST /api/v1/auth/login` and writes two
files for the wrk scripts: `tokens.txt` (one access token a line) and `owned.txt`
(`<token> <post id> ...`, the user's own posts).

`prepare_changes` makes the `changes` endpoint's fixture (`changes.txt`: a sync token that
exactly CHANGED_POSTS changes follow); bench.compare calls it after its own writes, the last
writes to posts before the rounds.

    python -m bench.fixtures --base-url http://127.0.0.1:8000 --database-url ... --out DIR
"""

import argparse
import json
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import psycopg

from bench.seed import libpq_url


def login(base_url: str, email: str, password: str) -> str:
    form = urllib.parse.urlencode({"username": email, "password": password}).encode()
    with urllib.request.urlopen(f"{base_url}/api/v1/auth/login", form, timeout=30) as response:
        return str(json.load(response)["access_token"])


CHANGED_POSTS = 1000  # rows the `changes` request reads: one page of the largest limit
CHANGES = "/api/v1/posts/changes?limit=1000"


def read_changes(base_url: str, since: str | None = None) -> dict[str, Any]:
    url = base_url + CHANGES + ("" if since is None else "&since=" + since)
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.load(response)  # type: ignore[no-any-return]


def since_now(base_url: str, since: str | None = None) -> str:
    """A sync token after every change so far: the feed read to its end (from `since`, else
    through the first round, every visible post), as a client that is up to date holds."""
    while True:
        page = read_changes(base_url, since)
        since = str(page["token"])
        if not page["has_more"]:
            return since


def prepare_changes(base_url: str, database_url: str, out: Path, since: str | None = None) -> str:
    """Up to date, then CHANGED_POSTS published posts (spread over the table) stamped anew in
    one transaction (`SET title = title`: the sync_stamp trigger stamps each row): the token
    written to `changes.txt` reads exactly those rows, `has_more` false, for as long as
    nothing else writes posts."""
    token = since_now(base_url, since)
    with psycopg.connect(libpq_url(database_url)) as connection:
        query = "SELECT id FROM posts WHERE published ORDER BY id"
        ids = [post_id for (post_id,) in connection.execute(query)]
        if len(ids) < CHANGED_POSTS:
            raise SystemExit(f"the changes fixture needs {CHANGED_POSTS} published posts")
        chosen = [ids[index * len(ids) // CHANGED_POSTS] for index in range(CHANGED_POSTS)]
        connection.execute("UPDATE posts SET title = title WHERE id = ANY(%s)", (chosen,))
    page = read_changes(base_url, token)
    if len(page["items"]) != CHANGED_POSTS or page["deleted"] or page["has_more"]:
        raise SystemExit(
            f"the changes fixture reads {len(page['items'])} items, {len(page['deleted'])}"
            f" deleted, has_more {page['has_more']}: something else wrote posts"
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "changes.txt").write_text(token + "\n")
    print(f"changes fixture: a sync token {CHANGED_POSTS} changed posts follow", flush=True)
    return token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--password", default="bench-password")
    args = parser.parse_args()
    with psycopg.connect(libpq_url(args.database_url)) as connection:
        rows = connection.execute(
            "SELECT owner_id, string_agg(id::text, ' ' ORDER BY id) FROM posts"
            " WHERE owner_id <= %s GROUP BY owner_id ORDER BY owner_id",
            (args.users,),
        ).fetchall()
    tokens, owned = [], []
    for user_id, ids in rows:
        token = login(args.base_url, f"user{user_id}@bench.example", args.password)
        tokens.append(token)
        owned.append(f"{token} {ids}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tokens.txt").write_text("\n".join(tokens) + "\n")
    (args.out / "owned.txt").write_text("\n".join(owned) + "\n")
    print(f"logged in {len(tokens)} users", flush=True)


if __name__ == "__main__":
    main()
