"""The list contract of a resource's list routes: offset or cursor pages, total, headers."""

from collections.abc import Mapping
from typing import Any

from fastapi import Request, Response

from app.crud.cursor import decode_cursor, encode_cursor, query_fingerprint
from app.crud.expand import parse_expand
from app.crud.filters import field_kind
from app.crud.pagination import set_cursor_link, set_page_headers
from app.crud.params import ListQuery
from app.crud.plan import ListPlanner, sort_keys
from app.crud.repository import ParentScope, Repository
from app.crud.representation import Representation
from app.crud.resource import Resource, Viewer
from app.crud.responses import database, json_response
from app.crud.sparse import parse_fields


class Listing:
    """Answers `GET /<plural>` and the nested lists of one resource."""

    def __init__(
        self, resource: Resource, repository: Repository, representation: Representation
    ) -> None:
        self.resource = resource
        self.repository = repository
        self.representation = representation
        self.relations = repository.relations
        self.query = ListQuery(resource, self.relations, representation.selectable)
        self.planner = ListPlanner(resource, self.relations)

    async def page(
        self,
        request: Request,
        viewer: Viewer,
        scope: Mapping[str, Any] | None = None,
        parent: ParentScope | None = None,
    ) -> Response:
        """The list contract: offset or cursor pages, total, `X-Total-Count` and `Link`."""
        settings = request.app.state.settings
        params = self.query.parse(request.query_params, settings.MAX_OFFSET, settings.MAX_IN_VALUES)
        scope = scope or {}
        secret = settings.SECRET_KEY
        fingerprint = query_fingerprint(self.resource.plural, params, scope)
        after = None
        if params["cursor"] is not None:
            sort = sort_keys(self.resource, params["sort"], self.relations)
            kinds = [field_kind(self.resource, self.relations, key.field) for key in sort]
            after = decode_cursor(params["cursor"], fingerprint, secret, kinds)
        expansion = parse_expand(params.get("expand") or (), self.relations)
        fieldset = parse_fields(params["fields"] or (), self.representation.selectable)
        query = self.planner.plan(params, viewer, scope, after, expansion)
        page = await self.repository.page(database(request), query, viewer, parent)
        next_cursor = (
            encode_cursor(page.last_key, fingerprint, secret) if page.last_key is not None else None
        )
        offset = None if after is not None else query.offset
        body = {
            "items": page.items,
            "total": page.total,
            "total_estimated": page.estimated,
            "limit": query.limit,
            "offset": offset,
            "next_cursor": next_cursor,
        }
        response = json_response(self.representation.page(body, fieldset))
        if offset is None or page.total is None:
            set_cursor_link(response, request.url, next_cursor)
        else:
            set_page_headers(
                response,
                request.url,
                total=page.total,
                limit=query.limit,
                offset=offset,
                max_offset=settings.MAX_OFFSET,
                next_cursor=next_cursor,
            )
        return response
