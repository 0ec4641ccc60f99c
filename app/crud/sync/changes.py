"""Reads one page of a resource's change feed for one viewer (`/changes` and `/events`)."""

import time
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, create_model

from app.core.connections import Row
from app.core.database import Database
from app.crud import binds
from app.crud.access import viewer_kind
from app.crud.repository import Repository
from app.crud.representation import Representation
from app.crud.resource import Resource, Viewer
from app.crud.sync.statements import FLOOR, ROW_ID, STAMP, ChangeStatements
from app.crud.sync.token import SyncToken

DEFAULT_LIMIT, MAX_LIMIT = 100, 1000


@dataclass(frozen=True)
class ChangePage:
    items: list[dict[str, Any]]  # {"etag", "data"}: rows created or changed, as now
    deleted: list[int]  # rows deleted, or no longer visible to the viewer
    token: SyncToken  # where the next read continues
    has_more: bool  # the next read continues this round at once

    @property
    def empty(self) -> bool:
        return not (self.items or self.deleted)


class Changes:
    def __init__(
        self, resource: Resource, repository: Repository, representation: Representation
    ) -> None:
        self.resource = resource
        self.projection = repository.projection
        self.representation = representation
        self.statements = ChangeStatements(resource, repository.access, repository.projection)
        self.model: type[BaseModel] = create_model(
            f"{resource.name}Changes",
            items=(
                list[representation.written_model],  # type: ignore[name-defined]  # a runtime type
                Field(description="Rows created or changed since the token, as they are now"),
            ),
            deleted=(
                list[int],
                Field(description="Ids of rows deleted, or no longer visible to the caller"),
            ),
            token=(str, Field(description="Pass it as `since` to read on from here")),
            has_more=(bool, Field(description="More changes follow at once: read again")),
        )

    async def read(self, db: Database, viewer: Viewer, token: SyncToken, limit: int) -> ChangePage:
        """The changes after `token`'s position, at most `limit`, each row once, as it is now."""
        statement = self.statements.changes(viewer_kind(viewer), token.initial)
        values = {
            binds.SYNC_STAMP: token.stamp,
            binds.SYNC_ROW: token.row_id,
            binds.LIMIT: limit + 1,
            binds.VIEWER_ID: viewer.id,
        }
        async with db.connect() as connection:
            rows = await connection.rows(statement, values)
        changed = [row for row in rows if row[ROW_ID] is not None]
        has_more = len(changed) > limit
        changed = changed[:limit]
        # A row's last change on the page wins (a tombstone, then the id made again).
        latest: dict[int, Row | None] = {}
        for row in changed:
            latest.pop(row[ROW_ID], None)
            latest[row[ROW_ID]] = row if row["id"] is not None else None
        items = [
            {"etag": self.projection.etag(row), "data": self.projection.shape(row)}
            for row in latest.values()
            if row is not None
        ]
        deleted = [row_id for row_id, row in latest.items() if row is None]
        next_token = self.next_token(token, rows[0][FLOOR], changed, has_more)
        return ChangePage(items, deleted, next_token, has_more)

    def next_token(
        self, token: SyncToken, floor: int, changed: list[Row], has_more: bool
    ) -> SyncToken:
        """Within a round, on after the page's last change; after it, every change from the
        floor of the round's first snapshot (docs/sync.md)."""
        if token.floor is None:  # this page began the round
            floor, taken_at = floor, int(time.time())
        else:
            floor, taken_at = token.floor, token.taken_at
        if not has_more:
            return SyncToken.since(self.resource.plural, floor, taken_at)
        last = changed[-1]
        return SyncToken(
            self.resource.plural, last[STAMP], last[ROW_ID], floor, token.initial, taken_at
        )

    def body(self, page: ChangePage, secret: str) -> bytes:
        """The page as JSON: the `/changes` answer and an event's data."""
        body = {
            "items": page.items,
            "deleted": page.deleted,
            "token": page.token.encode(secret),
            "has_more": page.has_more,
        }
        return self.representation.encode(self.model, body)
