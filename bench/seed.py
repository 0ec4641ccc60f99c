"""Bulk seed for the benchmark: users, posts, comments and votes through COPY.

Deterministic: user ids 1..users, post ids 1..posts, every UNPUBLISHED_EVERY-th post
unpublished (the wrk scripts skip those ids so anonymous reads never 404). Votes are
written with triggers off, so `posts.votes` is computed here and stays exact.

    python -m bench.seed --database-url postgresql://postgres@127.0.0.1/bench --posts 10000
"""

import argparse
import os
import time
from datetime import UTC, datetime, timedelta

import bcrypt
import psycopg

UNPUBLISHED_EVERY = 50
COMMENTS_PER_POST = 5  # what `expand=comments` nests (the expand endpoints)
MAX_VOTES_PER_POST = 4
LOREM = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
    "incididunt ut labore et dolore magna aliqua ut enim ad minim veniam quis nostrud"
)
WORDS = LOREM.split(" ")


def libpq_url(url: str) -> str:
    """The app's SQLAlchemy URL (`postgresql+psycopg://`) as a plain libpq one."""
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def text_for(number: int, words: int) -> str:
    return " ".join(WORDS[(number * 7 + i) % len(WORDS)] for i in range(words))


def voters(post_id: int, users: int) -> list[int]:
    """Distinct user ids voting for a post: 0..MAX_VOTES_PER_POST of them."""
    return [(post_id + step * 7) % users + 1 for step in range(post_id % (MAX_VOTES_PER_POST + 1))]


def seed(url: str, users: int, posts: int, password: str, rounds: int) -> None:
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()
    # Spread creation times over the past, one post every ~1.000137 s (unique, with micros).
    start = datetime.now(UTC) - timedelta(seconds=posts * 1.000137 + 60)
    with psycopg.connect(libpq_url(url)) as connection, connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")  # no triggers, no FK checks
        with cursor.copy(
            "COPY users (id, email, full_name, hashed_password, is_active, is_superuser,"
            " created_at, updated_at) FROM STDIN"
        ) as copy:
            for user_id in range(1, users + 1):
                copy.write_row(
                    (
                        user_id,
                        f"user{user_id}@bench.example",
                        f"Bench User {user_id}",
                        hashed,
                        True,
                        False,
                        start,
                        start,
                    )
                )
        with cursor.copy(
            "COPY posts (id, title, content, published, owner_id, votes, version,"
            " created_at, updated_at) FROM STDIN"
        ) as copy:
            for post_id in range(1, posts + 1):
                created = start + timedelta(seconds=post_id * 1.000137)
                copy.write_row(
                    (
                        post_id,
                        f"Post {post_id}: {text_for(post_id, 5)}",
                        text_for(post_id, 20 + post_id % 20),
                        post_id % UNPUBLISHED_EVERY != 0,
                        (post_id - 1) % users + 1,
                        len(voters(post_id, users)),
                        1,
                        created,
                        created,
                    )
                )
        with cursor.copy("COPY post_votes (post_id, user_id, created_at) FROM STDIN") as copy:
            for post_id in range(1, posts + 1):
                for user_id in voters(post_id, users):
                    copy.write_row((post_id, user_id, start))
        with cursor.copy(
            "COPY comments (post_id, author_id, body, version, created_at, updated_at) FROM STDIN"
        ) as copy:
            for post_id in range(1, posts + 1):
                for number in range(COMMENTS_PER_POST):
                    created = start + timedelta(seconds=post_id * 1.000137 + 30 + number)
                    author = (post_id * 3 + number) % users + 1
                    body = text_for(post_id + number, 12)
                    copy.write_row((post_id, author, body, 1, created, created))
        for table in ("users", "posts", "comments"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" (SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
            )
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--password", default="bench-password")
    parser.add_argument("--rounds", type=int, default=10, help="bcrypt cost of the one hash")
    args = parser.parse_args()
    if not args.database_url:
        parser.error("--database-url or DATABASE_URL is required")
    began = time.perf_counter()
    seed(args.database_url, args.users, args.posts, args.password, args.rounds)
    print(
        f"seeded {args.users} users, {args.posts} posts in {time.perf_counter() - began:.1f} s",
        flush=True,
    )


if __name__ == "__main__":
    main()
