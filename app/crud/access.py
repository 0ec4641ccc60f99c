"""Who may see and change which rows of a resource, as SQL.

Statements are built once per *kind* of viewer (anonymous, user, superuser) and reused: a
viewer's id enters them as the `viewer_id` bind parameter.
"""

from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Integer, and_, bindparam, false, select, true
from sqlalchemy.orm import aliased

from app.core.errors import Forbidden
from app.crud import binds
from app.crud.resource import Parent, Read, Resource, Viewer, Write


class ViewerKind(StrEnum):
    ANONYMOUS = "anonymous"
    USER = "user"
    SUPERUSER = "superuser"


def viewer_kind(viewer: Viewer) -> ViewerKind:
    if viewer.is_superuser:
        return ViewerKind.SUPERUSER
    return ViewerKind.ANONYMOUS if viewer.id is None else ViewerKind.USER


def symbolic_viewer(kind: ViewerKind) -> Viewer:
    """A viewer of this kind whose id is the `viewer_id` bind parameter."""
    if kind is ViewerKind.ANONYMOUS:
        return Viewer(id=None)
    viewer_id = bindparam(binds.VIEWER_ID, type_=Integer)
    return Viewer(id=viewer_id, is_superuser=kind is ViewerKind.SUPERUSER)


class Access:
    """The resource's read and write policies, and its visibility rule."""

    def __init__(self, resource: Resource) -> None:
        self.resource = resource
        table = resource.sa_table
        self.owner = table.c[resource.owner_field] if resource.owner_field else None

    def visible(
        self, viewer: Viewer, alias: FromClause | None = None, parents_seen: str | None = None
    ) -> ColumnElement[bool]:
        """Rows this viewer may see at all; the rest behave as if they did not exist.

        Of the table itself, or of an `alias` of it (a related row joined into a read).
        `parents_seen` names a parent reference whose rows the caller has just read under this
        viewer's visibility: its inherited rule would only repeat that check.
        """
        if viewer.is_superuser:
            return true()
        clauses: list[ColumnElement[bool]] = []
        if self.resource.read is not Read.PUBLIC and viewer.id is None:
            # Its routes already answer 401; this is for its rows nested into another's reads.
            clauses.append(false())
        owner: ColumnElement[Any] | None = self.owner
        if alias is not None and self.owner is not None:
            owner = alias.c[self.owner.key]
        if self.resource.read is Read.OWNER and owner is not None:
            clauses.append(owner == viewer.id if viewer.id is not None else false())
        if self.resource.visibility is not None:
            table = self.resource.table if alias is None else aliased(self.resource.table, alias)
            rule = self.resource.visibility(table, viewer)
            if rule is not None:
                clauses.append(rule)
        for parent in self.resource.parents:
            if parent.inherits_visibility and parent.field != parents_seen:
                clauses.append(self.parent_visible(parent, viewer, alias))
        return and_(true(), *clauses)

    def parent_visible(
        self, parent: Parent, viewer: Viewer, alias: FromClause | None
    ) -> ColumnElement[bool]:
        """The row's parent reference points at a row this viewer may see."""
        reference = (self.resource.sa_table if alias is None else alias).c[parent.field]
        [key] = parent.resource.sa_table.primary_key.columns
        return reference.in_(select(key).where(Access(parent.resource).visible(viewer)))

    def writable(self, viewer: Viewer) -> ColumnElement[bool]:
        """Rows this viewer may change (among the visible ones)."""
        if viewer.is_superuser or self.resource.write is Write.AUTHENTICATED:
            return true()
        if self.resource.write is Write.OWNER and self.owner is not None:
            mine: ColumnElement[bool] = self.owner == viewer.id
            return mine
        return false()

    def check_may_create(self, viewer: Viewer) -> None:
        if self.resource.write is Write.SUPERUSER and not viewer.is_superuser:
            raise Forbidden(f"Only superusers may create {self.resource.plural}")
