"""The list contract of a resource's list routes: offset or cursor pages, total, headers."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from starlette.datastructures import QueryParams

from app.core.replica import reads_primary
from app.crud.cursor import decode_cursor, encode_cursor, query_fingerprint
from app.crud.expand import parse_expand
from app.crud.filters import field_kind
from app.crud.pagination import set_cursor_link, set_page_headers
from app.crud.paging import PageRows
from app.crud.params import ListQuery
from app.crud.plan import ListPlanner, sort_keys
from app.crud.repository import ParentScope, Repository
from app.crud.representation import Representation
from app.crud.resource import Resource, Viewer
from app.crud.responses import database, json_response
from app.crud.sparse import FieldSet, parse_fields


@dataclass(frozen=True)
class Fetched:
    """A page as read, with what its answer needs."""

    page: PageRows
    limit: int
    offset: int | None  # None on cursor pages
    fieldset: FieldSet | None
    fingerprint: str  # what a cursor is bound to


class Listing:
    """Answers `GET /<plural>` and the nested lists of one resource.

    `extra_filters` adds filter fields beyond the resource's (the dialects' `id`, for
    react-admin's getMany).
    """

    def __init__(
        self,
        resource: Resource,
        repository: Repository,
        representation: Representation,
        extra_filters: tuple[str, ...] = (),
    ) -> None:
        self.resource = resource
        self.repository = repository
        self.representation = representation
        self.relations = repository.relations
        self.query = ListQuery(resource, self.relations, representation.selectable, extra_filters)
        self.planner = ListPlanner(resource, self.relations, extra_filters)

    async def fetch(
        self,
        request: Request,
        query: QueryParams,
        viewer: Viewer,
        scope: Mapping[str, Any] | None = None,
        parent: ParentScope | None = None,
    ) -> Fetched:
        """Validate `query` (422 otherwise), plan it and read the page."""
        settings = request.app.state.settings
        params = self.query.parse(query, settings.MAX_OFFSET, settings.MAX_IN_VALUES)
        scope = scope or {}
        fingerprint = query_fingerprint(self.resource.plural, params, scope)
        after = None
        if params["cursor"] is not None:
            sort = sort_keys(self.resource, params["sort"], self.relations)
            kinds = [field_kind(self.resource, self.relations, key.field) for key in sort]
            after = decode_cursor(params["cursor"], fingerprint, settings.SECRET_KEY, kinds)
        expansion = parse_expand(params.get("expand") or (), self.relations)
        fieldset = parse_fields(params["fields"] or (), self.representation.selectable)
        planned = self.planner.plan(params, viewer, scope, after, expansion)
        fresh = reads_primary(request)
        page = await self.repository.page(database(request), planned, viewer, parent, fresh=fresh)
        offset = None if after is not None else planned.offset
        return Fetched(page, planned.limit, offset, fieldset, fingerprint)

    async def page(
        self,
        request: Request,
        viewer: Viewer,
        scope: Mapping[str, Any] | None = None,
        parent: ParentScope | None = None,
    ) -> Response:
        """The list contract: offset or cursor pages, total, `X-Total-Count` and `Link`."""
        settings = request.app.state.settings
        fetched = await self.fetch(request, request.query_params, viewer, scope, parent)
        page, offset = fetched.page, fetched.offset
        next_cursor = (
            encode_cursor(page.last_key, fetched.fingerprint, settings.SECRET_KEY)
            if page.last_key is not None
            else None
        )
        body = {
            "items": page.items,
            "total": page.total,
            "total_estimated": page.estimated,
            "limit": fetched.limit,
            "offset": offset,
            "next_cursor": next_cursor,
        }
        response = json_response(self.representation.page(body, fetched.fieldset))
        if offset is None or page.total is None:
            set_cursor_link(response, request.url, next_cursor)
        else:
            set_page_headers(
                response,
                request.url,
                total=page.total,
                limit=fetched.limit,
                offset=offset,
                max_offset=settings.MAX_OFFSET,
                next_cursor=next_cursor,
            )
        return response
