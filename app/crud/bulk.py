"""Writes of many rows in one request: all or nothing, each row under a single write's rules.

A bulk create, update or delete runs every row's own statement (the same owner, parent,
visibility, write-policy and If-Match checks as one row's write) in one transaction. The first
row that may not be written ends it for a create, and rolls everything back; an update or
delete checks every row first and then names each refused one by its index (404, 403, 412),
having changed nothing.
"""

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy.exc import IntegrityError

from app.core.config import Settings
from app.core.connections import Connection
from app.core.database import Database
from app.core.db import utcnow
from app.core.db_errors import RETRY_AFTER_SECONDS, integrity_problem
from app.core.errors import (
    MAX_LISTED_ERRORS,
    Conflict,
    ProblemError,
    ServiceUnavailable,
    Unprocessable,
)
from app.crud import binds, idempotency
from app.crud.access import viewer_kind
from app.crud.expand import Expansion
from app.crud.integrity import missing_reference, reject_nul
from app.crud.paging import Item
from app.crud.repository import Repository
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


async def check_parents(
    repository: Repository, connection: Connection, rows: Sequence[Item], viewer: Viewer
) -> None:
    """Each parent the rows reference, once: it must exist and be visible (else 422 naming
    the first item that names it)."""
    for field, parent in repository.parents.items():
        first: dict[Any, int] = {}
        for index, values in enumerate(rows):
            first.setdefault(values.get(field), index)
        for parent_id, index in first.items():
            if parent_id is not None and not await parent.exists_visible(
                connection, parent_id, viewer
            ):
                raise refusal_at(index, missing_reference(field, parent_id))


@asynccontextmanager
async def bounded(settings: Settings) -> AsyncIterator[None]:
    """A bulk write's whole transaction within DB_STATEMENT_TIMEOUT_MS (PostgreSQL), not only
    each of its statements: past it the statement running is cancelled, the transaction rolls
    back, and the answer is 503."""
    seconds = settings.DB_STATEMENT_TIMEOUT_MS / 1000
    if settings.is_sqlite or not seconds:
        yield
        return
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise ServiceUnavailable(
            "The bulk write took longer than the statement timeout; nothing was changed",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        ) from None


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
        try:
            return await self._create_many(db, rows, viewer, key, expansion, at_once=True)
        except (IntegrityError, psycopg.IntegrityError):
            # One statement for all rows cannot say which one was refused: row by row can.
            return await self._create_many(db, rows, viewer, key, expansion, at_once=False)

    async def _create_many(
        self,
        db: Database,
        rows: Sequence[Item],
        viewer: Viewer,
        key: idempotency.Key | None,
        expansion: Expansion,
        at_once: bool,
    ) -> dict[str, Any]:
        async with db.transaction() as connection:
            if key is not None:
                replay = await idempotency.stored(connection, key)
                if replay is not None:
                    return replay[0]
            if at_once and connection.dialect_name == "postgresql":
                written = await self._insert_all(connection, rows, viewer, expansion)
            else:
                written = []
                for index, values in enumerate(rows):
                    with at_index(index):
                        written.append(
                            await self.repository.insert(connection, values, viewer, expansion)
                        )
            answer = {"items": [{"etag": etag, "data": item} for item, etag in written]}
            if key is not None:
                await idempotency.remember(connection, key, answer, "")
        return answer

    async def _insert_all(
        self, connection: Connection, rows: Sequence[Item], viewer: Viewer, expansion: Expansion
    ) -> list[tuple[Item, str]]:
        """Every row in one INSERT (PostgreSQL), after the checks a single create makes."""
        repository, resource = self.repository, self.repository.resource
        for index, values in enumerate(rows):
            with at_index(index):
                reject_nul(values, "body")
        await check_parents(repository, connection, rows, viewer)
        now = utcnow()
        common: Item = {"created_at": now, "updated_at": now, "version": 1}
        if resource.owner_field:
            common[resource.owner_field] = viewer.id
        varying, constant = tuple(rows[0]), tuple(common)
        statements, kind = repository.statements, viewer_kind(viewer)
        statement = statements.written(
            ("insert-all", varying, constant),
            lambda: statements.insert_all(varying, constant),
            kind,
            expansion.to_one,
        )
        params = {binds.column_value(name): [row[name] for row in rows] for name in varying}
        params |= {binds.column_value(name): value for name, value in common.items()}
        found = await connection.rows(statement, {**params, binds.VIEWER_ID: viewer.id})
        # ids come from the sequence in insertion order, which is the arrays' order
        ordered = sorted(found, key=lambda row: row["id"])
        return [await repository.represent(connection, row, viewer, expansion) for row in ordered]

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
