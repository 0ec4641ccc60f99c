"""Writes of many rows in one request: all or nothing, each row under a single write's rules.

A bulk create, update or delete runs every row's own statement (the same owner, parent,
visibility, write-policy and If-Match checks as one row's write) in one transaction. The first
row that may not be written ends it for a create, and rolls everything back; an update or
delete checks every row first and then names each refused one by its index (404, 403, 412),
having changed nothing.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy.exc import IntegrityError

from app.core.database import Database
from app.core.db_errors import integrity_problem
from app.core.errors import MAX_LISTED_ERRORS, Conflict, ProblemError, Unprocessable
from app.crud import idempotency
from app.crud.expand import Expansion
from app.crud.repository import Item, Repository
from app.crud.resource import Viewer


@dataclass(frozen=True)
class Target:
    """One row of a bulk update or delete: its id, If-Match tags and (update) changes."""

    item_id: int
    tags: Sequence[int] | None = None
    changes: Item | None = None


@contextmanager
def at_index(index: int) -> Iterator[None]:
    """A row's refusal, named by its index in the request body."""
    try:
        yield
    except ProblemError as error:
        raise refusal_at(index, error) from None
    except (IntegrityError, psycopg.IntegrityError) as error:
        orig = error.orig if isinstance(error, IntegrityError) else error
        status, slug, detail, fields = integrity_problem(orig)
        problem = Conflict if status == 409 else Unprocessable
        errors = [{"loc": ["body", index, *fields[:1]], "msg": detail, "type": slug}]
        raise problem(f"Item {index}: {detail}", slug=slug, errors=errors) from None


def refusal_at(index: int, error: ProblemError) -> ProblemError:
    """`error`, as the refusal of the item at `index`."""
    errors = [
        {**item, "loc": ["body", index, *list(item["loc"])[1:]]} for item in error.errors or ()
    ] or [{"loc": ["body", index], "msg": error.detail, "type": error.slug}]
    return type(error)(
        f"Item {index}: {error.detail}", slug=error.slug, errors=errors, headers=error.headers
    )


def several_refusals(refusals: Sequence[ProblemError]) -> ProblemError:
    """Every refused row of an update or delete (each `refusal_at` its index): the first
    one's status, each one listed."""
    first = refusals[0]
    errors = [error.errors[0] for error in refusals[:MAX_LISTED_ERRORS] if error.errors]
    detail = f"{len(refusals)} item(s) may not be written; nothing was changed"
    return type(first)(detail, slug=first.slug, errors=errors)


REFUSED = (403, 404, 412)  # statuses an update or delete lists for every row


class BulkWrites:
    """The bulk writes of one resource, on its `Repository`."""

    def __init__(self, repository: Repository) -> None:
        self.repository = repository

    async def create_many(
        self,
        db: Database,
        rows: Sequence[Item],
        viewer: Viewer,
        key: idempotency.Key | None,
        expansion: Expansion,
    ) -> dict[str, Any]:
        """`{"items": [{"etag", "data"}, ...]}` in request order; with an Idempotency-Key a
        retry returns the first answer."""
        async with db.transaction() as connection:
            if key is not None:
                replay = await idempotency.stored(connection, key)
                if replay is not None:
                    return replay[0]
            items = []
            for index, values in enumerate(rows):
                with at_index(index):
                    item, etag = await self.repository.insert(connection, values, viewer, expansion)
                items.append({"etag": etag, "data": item})
            answer = {"items": items}
            if key is not None:
                await idempotency.remember(connection, key, answer, "")
        return answer

    async def update_many(
        self, db: Database, targets: Sequence[Target], viewer: Viewer, expansion: Expansion
    ) -> dict[str, Any]:
        """`{"items": [{"etag", "data"}, ...]}` in request order, or nothing changed."""
        items, refusals = [], []
        async with db.transaction() as connection:
            for index, target in enumerate(targets):
                assert target.changes is not None
                try:
                    with at_index(index):
                        item, etag = await self.repository.change(
                            connection,
                            target.item_id,
                            target.changes,
                            viewer,
                            target.tags,
                            expansion,
                        )
                    items.append({"etag": etag, "data": item})
                except ProblemError as error:
                    if error.status not in REFUSED:
                        raise
                    refusals.append(error)
            if refusals:
                raise several_refusals(refusals)  # the transaction rolls back
        return {"items": items}

    async def delete_many(self, db: Database, targets: Sequence[Target], viewer: Viewer) -> None:
        refusals = []
        async with db.transaction() as connection:
            for index, target in enumerate(targets):
                try:
                    with at_index(index):
                        await self.repository.remove(
                            connection, target.item_id, viewer, target.tags
                        )
                except ProblemError as error:
                    if error.status not in REFUSED:
                        raise
                    refusals.append(error)
            if refusals:
                raise several_refusals(refusals)
