"""Tokens and owned post ids for the write benchmarks, obtained the way a client would.

Logs the seeded users in through the project's `POST /api/v1/auth/login` and writes two
files for the wrk scripts: `tokens.txt` (one access token a line) and `owned.txt`
(`<token> <post id> ...`, the user's own posts).

    python -m bench.fixtures --base-url http://127.0.0.1:8000 --database-url ... --out DIR
"""

import argparse
import json
import urllib.parse
import urllib.request
from pathlib import Path

import psycopg

from bench.seed import libpq_url


def login(base_url: str, email: str, password: str) -> str:
    form = urllib.parse.urlencode({"username": email, "password": password}).encode()
    with urllib.request.urlopen(f"{base_url}/api/v1/auth/login", form, timeout=30) as response:
        return str(json.load(response)["access_token"])


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
