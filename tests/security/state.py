"""What the database holds, reduced to values a test can compare before and after an attack."""

import hashlib
from typing import Any

from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlmodel import SQLModel

HASHED_TABLES = ("users", "posts", "comments")


def _digest(rows: Any) -> str:
    return hashlib.sha256(repr([tuple(row) for row in rows]).encode()).hexdigest()


async def snapshot(app: FastAPI) -> dict[str, Any]:
    """Row counts of every table and a content hash of users, posts and comments."""
    state: dict[str, Any] = {}
    async with app.state.engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            count = select(func.count()).select_from(table)
            state[f"count:{table.name}"] = (await connection.execute(count)).scalar_one()
        for name in HASHED_TABLES:
            rows = await connection.execute(text(f'SELECT * FROM "{name}" ORDER BY id'))
            state[f"hash:{name}"] = _digest(rows)
    return state


async def owned_rows(app: FastAPI, user_id: int) -> str:
    """A hash of one user's row and everything they own (posts, comments, votes)."""
    queries = {
        "users": "SELECT * FROM users WHERE id = :id",
        "posts": "SELECT * FROM posts WHERE owner_id = :id ORDER BY id",
        "comments": "SELECT * FROM comments WHERE author_id = :id ORDER BY id",
        "post_votes": "SELECT * FROM post_votes WHERE user_id = :id ORDER BY post_id",
    }
    parts = []
    async with app.state.engine.connect() as connection:
        for query in queries.values():
            parts.append(_digest(await connection.execute(text(query), {"id": user_id})))
    return "/".join(parts)
