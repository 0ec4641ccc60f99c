#!/usr/bin/env python3
"""Fill the database at DATABASE_URL with demo data and/or a JSON fixture file (README "Seeding").

    python -m scripts.seed --users 50 --posts 500 --comments 2000 --votes 4000 --seed 7
    python -m scripts.seed --from fixtures.json
    python -m scripts.seed --reset          # drop the demo users and all they own, then seed

Idempotent: demo row i is a function of (--seed, i), so a re-run inserts only the rows that are
missing up to the requested counts.
"""

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

if __package__ in (None, ""):  # run as `python scripts/seed.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from psycopg import sql as pg_sql
from sqlalchemy import Table, delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import SQLModel, col
from tqdm import tqdm

import app.models  # noqa: F401  (declares every resource)
from app.core.config import ConfigurationError, Settings, get_settings
from app.core.database import Database
from app.core.security import hash_password
from app.crud.resource import registry
from app.models.comment import Comment
from app.models.post import Post, PostVote
from app.models.user import User
from scripts.create_superuser import ensure_first_superuser
from scripts.demo_data import DEMO_DOMAIN, DEMO_PASSWORD, DemoData, demo_index
from scripts.fixtures import FixtureError, load_fixtures

DEFAULT_COUNTS = {"users": 20, "posts": 200, "comments": 600, "votes": 1_000}
BATCH_SIZE = 5_000
T = TypeVar("T")


class SeedRefused(Exception):
    """The options are refused before anything is written."""


@dataclass
class Options:
    users: int
    posts: int
    comments: int
    votes: int
    seed: int = 0
    fixtures: Path | None = None
    reset: bool = False


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class Progress:
    """A tqdm bar per table on a terminal; a start and an end line otherwise (logs, CI)."""

    def __init__(self, label: str, total: int, existing: int) -> None:
        self.label, self.total, self.started = label, total, time.perf_counter()
        self.bar = None
        self.plain = not sys.stderr.isatty() and total > 0
        if self.plain:
            print(f"{label}: adding {total} ({existing} already there)", flush=True)
        elif total > 0:
            self.bar = tqdm(total=total, desc=f"{label:>8}", unit=" rows", file=sys.stderr)

    def update(self, count: int) -> None:
        if self.bar is not None:
            self.bar.update(count)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.plain:
            elapsed = time.perf_counter() - self.started
            print(f"{self.label}: added {self.total} in {elapsed:.1f} s", flush=True)


Write = Callable[[AsyncConnection, list[dict[str, Any]]], Awaitable[None]]


def inserting(statement: Any) -> Write:
    async def write(connection: AsyncConnection, batch: list[dict[str, Any]]) -> None:
        await connection.execute(statement, batch)

    return write


def copying(table: Table) -> Write:
    """PostgreSQL's COPY: about a third cheaper than a multi-row INSERT of the same rows."""

    async def write(connection: AsyncConnection, batch: list[dict[str, Any]]) -> None:
        columns = list(batch[0])
        command = pg_sql.SQL("COPY {} ({}) FROM STDIN").format(
            pg_sql.Identifier(table.name), pg_sql.SQL(", ").join(map(pg_sql.Identifier, columns))
        )
        raw = (await connection.get_raw_connection()).driver_connection
        assert raw is not None
        async with raw.cursor() as cursor, cursor.copy(command) as copy:
            for row in batch:
                await copy.write_row([row[column] for column in columns])

    return write


async def insert_batches(
    engine: AsyncEngine,
    write: Write,
    rows: Iterable[dict[str, Any]],
    progress: Progress,
    workers: int = 1,
) -> None:
    """Batches in transactions of their own, over `workers` connections at once.

    An interrupted run keeps whole batches; a re-run finds the rows by key and adds the rest.
    """
    batches = batched(rows, BATCH_SIZE)

    async def work() -> None:
        for batch in batches:  # shared: each batch goes to whichever worker is free
            async with engine.begin() as connection:
                await write(connection, batch)
            progress.update(len(batch))

    try:
        await asyncio.gather(*(work() for _ in range(workers)))
    finally:
        progress.close()


def demo_user_ids() -> Any:
    return select(col(User.id)).where(col(User.email).like(f"%@{DEMO_DOMAIN}"))


class DemoSeeder:
    """Tops each demo table up to rows 0..N-1; a row is found again by a key derived from i."""

    def __init__(self, engine: AsyncEngine, settings: Settings, seed: int) -> None:
        self.engine = engine
        self.settings = settings
        self.data = DemoData(seed)
        # PostgreSQL runs two inserting sessions on two cores; SQLite has one writer anyway.
        self.workers = 1 if settings.is_sqlite else 2
        self.user_ids: list[int] = []  # by demo index
        self.post_ids: list[int] = []  # by demo index

    async def rows(self, statement: Any) -> list[Any]:
        async with self.engine.connect() as connection:
            return list(await connection.execute(statement))

    async def fill(
        self, label: str, table: Any, rows: Iterable[dict[str, Any]], total: int, existing: int
    ) -> None:
        progress = Progress(label, total, existing)
        sa_table = table.__table__
        write = inserting(insert(sa_table)) if self.settings.is_sqlite else copying(sa_table)
        await insert_batches(self.engine, write, rows, progress, self.workers)

    async def users(self, count: int) -> int:
        found = await self.rows(
            select(col(User.id), col(User.email)).where(col(User.id).in_(demo_user_ids()))
        )
        indices = ((demo_index(email), id_) for id_, email in found)
        existing = {index: id_ for index, id_ in indices if index is not None}
        missing = [index for index in range(count) if index not in existing]
        if missing:
            hashed = await hash_password(DEMO_PASSWORD, self.settings.BCRYPT_ROUNDS)
            rows = [self.data.user(index, hashed) for index in missing]
            await self.fill("users", User, rows, len(rows), len(existing))
            return await self.users(count)
        self.user_ids = [existing[index] for index in sorted(existing)]
        return len(self.user_ids)

    async def posts(self, count: int) -> int:
        found = await self.rows(
            select(col(Post.created_at), col(Post.id)).where(
                col(Post.owner_id).in_(demo_user_ids())
            )
        )
        by_time = dict(found)
        times = [self.data.post_time(index) for index in range(count)]
        missing = [index for index, time_ in enumerate(times) if time_ not in by_time]
        if missing and not self.user_ids:
            print("posts: skipped, there are no demo users", flush=True)
            return 0
        if missing:
            rows = (self.data.post(index, self.user_ids) for index in missing)
            await self.fill("posts", Post, rows, len(missing), count - len(missing))
            return await self.posts(count)
        self.post_ids = [by_time[time_] for time_ in times]
        return count

    async def comments(self, count: int) -> int:
        if not self.user_ids or not self.post_ids:
            if count:
                print("comments: skipped, there are no demo users or posts", flush=True)
            return 0
        found = await self.rows(
            select(col(Comment.post_id), col(Comment.created_at)).where(
                col(Comment.author_id).in_(demo_user_ids())
            )
        )
        present = {tuple(row) for row in found}
        posts, missing = len(self.post_ids), list[int]()
        for index in range(count):
            if len(present) + len(missing) >= count:
                break
            post, created = self.data.comment_place(index, posts)
            if (self.post_ids[post], created) not in present:
                missing.append(index)
        users, post_ids = self.user_ids, self.post_ids
        rows = (self.data.comment(index, users, post_ids) for index in missing)
        await self.fill("comments", Comment, rows, len(missing), len(present))
        return len(present) + len(missing)

    async def votes(self, count: int) -> int:
        users, posts = len(self.user_ids), len(self.post_ids)
        if count > users * posts:
            print(f"votes: capped at {users * posts}, one per demo user and post", flush=True)
            count = users * posts
        if not count:
            return 0
        found = await self.rows(
            select(col(PostVote.post_id), col(PostVote.user_id)).where(
                col(PostVote.user_id).in_(demo_user_ids())
            )
        )
        present = {tuple(row) for row in found}
        cells = self.data.vote_cells(posts, users)
        missing: list[tuple[int, int, int]] = []
        for index in range(count):
            if len(present) + len(missing) >= count:
                break
            post, user = self.data.vote_place(index, cells, users)
            if (self.post_ids[post], self.user_ids[user]) not in present:
                missing.append((post, user, index))
        # Each vote fires the trigger that counts it on its post. In post order, batches
        # running side by side touch different posts, so they do not queue on row locks.
        missing.sort()
        rows = (
            {
                "post_id": self.post_ids[post],
                "user_id": self.user_ids[user],
                "created_at": self.data.vote_time(index, post),
            }
            for post, user, index in missing
        )
        progress = Progress("votes", len(missing), len(present))
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(PostVote).on_conflict_do_nothing()
        await insert_batches(self.engine, inserting(statement), rows, progress, self.workers)
        return len(present) + len(missing)


def owned_tables() -> list[tuple[Table, str]]:
    """(table, owner column) of every registered resource, children before parents."""
    order = {table.name: position for position, table in enumerate(SQLModel.metadata.sorted_tables)}
    owned = [(r.sa_table, r.owner_field) for r in registry if r.owner_field is not None]
    return sorted(owned, key=lambda item: order[item[0].name], reverse=True)


async def reset_demo(engine: AsyncEngine) -> int:
    """Delete the demo users and every row they own (cascades take votes and tokens)."""
    async with engine.begin() as connection:
        for table, owner in owned_tables():
            await connection.execute(delete(table).where(table.c[owner].in_(demo_user_ids())))
        result = await connection.execute(delete(User).where(col(User.id).in_(demo_user_ids())))
    return int(result.rowcount)


async def seed(options: Options, settings: Settings) -> list[str]:
    """Seed per `options`; returns the summary lines. Refuses `--reset` in production."""
    if options.reset and settings.ENVIRONMENT == "production":
        raise SeedRefused("--reset is refused when ENVIRONMENT=production")
    summary = [await ensure_first_superuser()]
    async with Database(settings) as db:
        engine = db.engine
        if options.reset:
            summary.append(f"reset: deleted {await reset_demo(engine)} demo users and their rows")
        wanted = {name: getattr(options, name) for name in DEFAULT_COUNTS}
        counts = dict.fromkeys(wanted, 0)
        if any(wanted.values()):
            seeder = DemoSeeder(engine, settings, options.seed)
            counts["users"] = await seeder.users(options.users)
            counts["posts"] = await seeder.posts(options.posts)
            counts["comments"] = await seeder.comments(options.comments)
            counts["votes"] = await seeder.votes(options.votes)
            summary.append("demo rows: " + ", ".join(f"{n} {name}" for name, n in counts.items()))
        if options.fixtures is not None:
            loaded = await load_fixtures(engine, options.fixtures, settings.BCRYPT_ROUNDS)
            summary.append(
                f"loaded {options.fixtures}: "
                + (", ".join(f"{n} {name}" for name, n in loaded.items()) or "nothing")
            )
    if counts["users"]:
        summary.append(f"Log in as demo1@{DEMO_DOMAIN} (any demoN) with password {DEMO_PASSWORD}")
    return summary


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.seed",
        description="Seed demo data (idempotent: re-runs top up to the counts) and fixtures.",
    )
    for name, default in DEFAULT_COUNTS.items():
        parser.add_argument(
            f"--{name}",
            type=int,
            metavar="N",
            help=f"demo {name} wanted in total (default {default}; 0 with --from)",
        )
    parser.add_argument("--seed", type=int, default=0, help="the data's random seed (default 0)")
    parser.add_argument(
        "--from", dest="fixtures", type=Path, metavar="FILE.json", help="load a fixture file"
    )
    parser.add_argument(
        "--reset", action="store_true", help="first delete the demo users and all they own"
    )
    args = parser.parse_args(argv)
    counts = {}
    for name, default in DEFAULT_COUNTS.items():
        value = getattr(args, name)
        if value is not None and value < 0:
            parser.error(f"--{name} must be 0 or more")
        counts[name] = value if value is not None else (0 if args.fixtures else default)
    if args.seed < 0:
        parser.error("--seed must be 0 or more")
    return Options(**counts, seed=args.seed, fixtures=args.fixtures, reset=args.reset)


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    try:
        settings = get_settings()
        started = time.perf_counter()
        summary = asyncio.run(seed(options, settings))
    except (SeedRefused, FixtureError, ConfigurationError) as error:
        print(f"seed: {error}", file=sys.stderr)
        return 1
    print("\n".join(summary))
    print(f"Seeded in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
