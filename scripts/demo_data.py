"""The demo rows, each a pure function of (seed, index): a re-run or a top-up rebuilds them exactly.

Faker writes pools of names, titles and sentences once per seed; rows pick from the pools with
a random generator seeded by their own index, which is fast enough for hundreds of thousands.
"""

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from math import gcd
from typing import Any

from faker import Faker

DEMO_DOMAIN = "demo.example.com"
DEMO_PASSWORD = "demo-password"
# Fixed, so the same seed gives the same timestamps whenever it runs.
ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)
POSTS_SPAN = timedelta(days=365)
REPLY_SPAN = timedelta(days=30)
USERS, POSTS, COMMENTS, VOTES, POST_TIMES, OWNERS, AUTHORS, PLACES, REPLY_TIMES = range(9)
MASK = (1 << 64) - 1


def mix(*parts: int) -> int:
    """A 64-bit hash of small integers, stable across runs and platforms.

    The parts are packed into one integer (distinct for parts below 2**40), then mixed by the
    splitmix64 finaliser.
    """
    state = 0
    for part in parts:
        state = (state * 0x100000001B3 + part) & MASK
    state = (state + 0x9E3779B97F4A7C15) & MASK
    state = ((state ^ (state >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    state = ((state ^ (state >> 27)) * 0x94D049BB133111EB) & MASK
    return state ^ (state >> 31)


def unit(*parts: int) -> float:
    """A float in [0, 1) drawn from the hash of `parts`."""
    return mix(*parts) / (MASK + 1)


def demo_email(index: int) -> str:
    return f"demo{index + 1}@{DEMO_DOMAIN}"


def demo_index(email: str) -> int | None:
    """The index of a demo email (`demo7@...` -> 6), None for any other address."""
    local, _, domain = email.partition("@")
    number = local.removeprefix("demo")
    if domain != DEMO_DOMAIN or not number.isdigit() or number != local[4:]:
        return None
    return int(number) - 1


@dataclass
class TextPool:
    """Faker text made once per seed; rows choose from it."""

    titles: list[str]
    sentences: list[str]

    @classmethod
    def build(cls, seed: int, titles: int = 2_000, sentences: int = 6_000) -> "TextPool":
        fake = Faker("en_US")
        fake.seed_instance(seed)
        return cls(
            titles=[fake.sentence(nb_words=6).rstrip(".") for _ in range(titles)],
            sentences=[fake.sentence(nb_words=12) for _ in range(sentences)],
        )


class DemoData:
    """Row builders for one seed; ids are the database ids of demo users and posts by index."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._pool: TextPool | None = None
        self._fake = Faker("en_US")

    @property
    def pool(self) -> TextPool:
        if self._pool is None:
            self._pool = TextPool.build(self.seed)
        return self._pool

    def post_time(self, index: int) -> datetime:
        """Post i's `created_at`, which also tells a re-run whether post i is there."""
        return ANCHOR - POSTS_SPAN * unit(self.seed, POST_TIMES, index)

    def user(self, index: int, hashed_password: str) -> dict[str, Any]:
        self._fake.seed_instance(mix(self.seed, USERS, index))
        created = ANCHOR - POSTS_SPAN - timedelta(days=30) * unit(self.seed, USERS, index)
        return {
            "email": demo_email(index),
            "full_name": self._fake.name(),
            "hashed_password": hashed_password,
            "is_active": True,
            "is_superuser": False,
            "created_at": created,
            "updated_at": created,
        }

    def post(self, index: int, user_ids: Sequence[int]) -> dict[str, Any]:
        rng = random.Random(mix(self.seed, POSTS, index))
        sentences = self.pool.sentences
        paragraphs = [
            " ".join(rng.choices(sentences, k=rng.randint(2, 6))) for _ in range(rng.randint(1, 4))
        ]
        created = self.post_time(index)
        return {
            "title": rng.choice(self.pool.titles),
            "content": "\n\n".join(paragraphs),
            "published": rng.random() < 0.9,
            "owner_id": user_ids[mix(self.seed, OWNERS, index) % len(user_ids)],
            "created_at": created,
            "updated_at": created,
            "version": 1,
            "votes": 0,
        }

    def comment_place(self, index: int, posts: int) -> tuple[int, datetime]:
        """(post index, created_at) of comment i: together they identify it on a re-run."""
        post = mix(self.seed, PLACES, index) % posts
        return post, self.post_time(post) + REPLY_SPAN * unit(self.seed, REPLY_TIMES, index)

    def comment(
        self, index: int, user_ids: Sequence[int], post_ids: Sequence[int]
    ) -> dict[str, Any]:
        rng = random.Random(mix(self.seed, COMMENTS, index))
        post, created = self.comment_place(index, len(post_ids))
        return {
            "body": " ".join(rng.choices(self.pool.sentences, k=rng.randint(1, 3))),
            "post_id": post_ids[post],
            "author_id": user_ids[mix(self.seed, AUTHORS, index) % len(user_ids)],
            "created_at": created,
            "updated_at": created,
            "version": 1,
        }

    def vote_cells(self, posts: int, users: int) -> tuple[int, int, int]:
        """(multiplier, offset, size): vote k sits in cell (a*k + b) % size, a bijection."""
        size = posts * users
        multiplier = mix(self.seed, VOTES) % size or 1
        while gcd(multiplier, size) != 1:
            multiplier += 1
        return multiplier, mix(self.seed, VOTES, 1) % size, size

    def vote_place(self, index: int, cells: tuple[int, int, int], users: int) -> tuple[int, int]:
        """(post index, user index) of vote i; distinct indices give distinct pairs."""
        multiplier, offset, size = cells
        return divmod((multiplier * index + offset) % size, users)

    def vote_time(self, index: int, post: int) -> datetime:
        return self.post_time(post) + REPLY_SPAN * unit(self.seed, VOTES, index)
