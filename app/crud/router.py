"""Turns a resource declaration into documented FastAPI routes.

The endpoints are closures whose annotations are the resource's runtime schemas, so FastAPI
validates and documents them; keep `from __future__ import annotations` out of this module.
"""

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request, Response, status

from app.core.errors import Forbidden, Unprocessable, problem_responses
from app.crud import idempotency
from app.crud.cursor import InvalidCursor, decode_cursor, encode_cursor, query_fingerprint
from app.crud.etag import none_match, parse_if_match
from app.crud.pagination import set_cursor_link, set_page_headers
from app.crud.params import ListQuery
from app.crud.repository import Page, Repository
from app.crud.representation import Representation
from app.crud.resource import Read, Resource, Viewer, ViewerDeps, Write

MAX_ID = 2**31 - 1
JSON = "application/json"
ItemId = Annotated[int, Path(ge=1, le=MAX_ID, description="The record's id")]
IfMatch = Annotated[
    str | None, Header(description="Write only if the record still has this ETag (else 412)")
]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Retries with the same key and body return the first response (24 h)",
    ),
]
IfNoneMatch = Annotated[str | None, Header(description="304 when the ETag is unchanged")]


def json_response(body: bytes, status_code: int = 200, etag: str | None = None) -> Response:
    headers = {"ETag": etag} if etag else None
    return Response(body, status_code=status_code, media_type=JSON, headers=headers)


class ResourceRoutes:
    """The generated routes of one resource and the pieces they share."""

    def __init__(self, resource: Resource, viewers: ViewerDeps) -> None:
        self.resource = resource
        self.repository = Repository(resource)
        self.viewers = viewers
        self.representation = Representation(resource)
        self.list_model = self.representation.list_model
        self.query = ListQuery(resource)
        public_read = resource.read is Read.PUBLIC
        self.read_viewer = viewers.optional if public_read else viewers.required
        # 401 even on public reads: a token that is sent must be valid.
        self.read_errors = (401,)

    async def list_page(
        self,
        request: Request,
        params: Mapping[str, Any],
        viewer: Viewer,
        scope: Mapping[str, Any] | None = None,
        parent: tuple[Repository, int] | None = None,
    ) -> Response:
        """The list contract: offset or cursor pages, total, `X-Total-Count` and `Link`."""
        secret = request.app.state.settings.SECRET_KEY
        fingerprint = query_fingerprint(self.resource.plural, params, scope or {})
        after = None
        if params["cursor"] is not None:
            kinds = self.repository.sort_kinds(params["sort"])
            try:
                after = decode_cursor(params["cursor"], fingerprint, secret, kinds)
            except (InvalidCursor, ValueError) as error:
                raise Unprocessable(
                    str(error) if isinstance(error, InvalidCursor) else "the cursor is not valid",
                    slug="invalid-cursor",
                    errors=[{"loc": ["query", "cursor"], "msg": str(error), "type": "cursor"}],
                ) from None
        async with request.app.state.db.connect() as connection:
            if parent is not None:
                await parent[0].require_visible(connection, parent[1], viewer)
            page: Page = await self.repository.page(
                connection, params, viewer, scope=scope, after=after
            )
        next_cursor = (
            encode_cursor(page.last_key, fingerprint, secret) if page.last_key is not None else None
        )
        offset = None if after is not None else params["offset"] or 0
        body = {
            "items": page.items,
            "total": page.total,
            "total_estimated": page.estimated,
            "limit": params["limit"],
            "offset": offset,
            "next_cursor": next_cursor,
        }
        response = json_response(self.representation.page(body))
        if offset is None or page.total is None:
            set_cursor_link(response, request.url, next_cursor)
        else:
            set_page_headers(
                response, request.url, total=page.total, limit=params["limit"], offset=offset
            )
        return response

    def item_response(self, item: dict[str, Any], etag: str, status_code: int = 200) -> Response:
        return json_response(self.representation.item(item), status_code, etag)

    def check_may_create(self, viewer: Viewer) -> None:
        if self.resource.write is Write.SUPERUSER and not viewer.is_superuser:
            raise Forbidden(f"Only superusers may create {self.resource.plural}")

    def build(self) -> list[APIRouter]:
        resource, repository = self.resource, self.repository
        plural, operations = resource.plural, resource.operations
        embeds = len(resource.embeds)
        router = APIRouter(prefix=f"/{plural}", tags=[plural])
        routers = [router]
        ReadViewer = Annotated[Viewer, Depends(self.read_viewer)]
        WriteViewer = Annotated[Viewer, Depends(self.viewers.required)]
        Create = resource.create
        Update = resource.update
        item_errors = (400, *self.read_errors, 404, 422)  # 400: a malformed If-None-Match
        write_errors = (400, 401, 403, 404, 409, 412, 422)

        if "list" in operations:

            @router.get(
                "",
                operation_id=f"{plural}-list",
                response_model=self.list_model,
                responses=problem_responses(*self.read_errors, 422),
                openapi_extra={"parameters": self.query.openapi_parameters},
            )
            async def list_items(request: Request, viewer: ReadViewer) -> Any:
                return await self.list_page(request, self.query.parse(request.query_params), viewer)

        if "get" in operations:

            @router.get(
                "/{item_id}",
                name=f"{plural}-get",
                operation_id=f"{plural}-get",
                response_model=resource.public,
                responses={304: {"description": "Not modified"}, **problem_responses(*item_errors)},
            )
            async def get_item(
                request: Request,
                item_id: ItemId,
                viewer: ReadViewer,
                if_none_match: IfNoneMatch = None,
            ) -> Any:
                async with request.app.state.db.connect() as connection:
                    item, etag = await repository.get(connection, item_id, viewer)
                if none_match(if_none_match, etag):
                    return Response(
                        status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag}
                    )
                return self.item_response(item, etag)

        if "create" in operations:

            @router.post(
                "",
                operation_id=f"{plural}-create",
                status_code=status.HTTP_201_CREATED,
                response_model=resource.public,
                responses=problem_responses(401, 403, 409, 422),
            )
            async def create_item(
                request: Request,
                data: Create,  # type: ignore[valid-type]
                viewer: WriteViewer,
                idempotency_key: IdempotencyKeyHeader = None,
            ) -> Any:
                self.check_may_create(viewer)
                values = data.model_dump()  # type: ignore[attr-defined]
                assert viewer.id is not None
                fingerprint = idempotency.request_hash(
                    request.url.path, data.model_dump(mode="json")
                )  # type: ignore[attr-defined]
                several = idempotency_key is not None or bool(resource.parents)
                async with request.app.state.db.for_write(several) as connection:
                    if idempotency_key is not None:
                        replay = await idempotency.stored_response(
                            connection, viewer.id, idempotency_key, fingerprint
                        )
                        if replay is not None:
                            return replay
                    item, etag = await repository.create(connection, values, viewer)
                    response = self.item_response(item, etag, status.HTTP_201_CREATED)
                    # The create path plus the id: url_for() would search every route.
                    location = request.url.replace(
                        path=f"{request.url.path}/{item['id']}", query=""
                    )
                    response.headers["Location"] = str(location)
                    if idempotency_key is not None:
                        await idempotency.remember(
                            connection, viewer.id, idempotency_key, fingerprint, response
                        )
                return response

        async def write(
            request: Request,
            item_id: int,
            changes: dict[str, Any],
            viewer: Viewer,
            if_match: str | None,
        ) -> Response:
            tags = parse_if_match(if_match, embeds)
            # The If-Match check is in the UPDATE itself; a parent check needs a transaction.
            async with request.app.state.db.for_write(bool(resource.parents)) as connection:
                item, etag = await repository.update(connection, item_id, changes, viewer, tags)
            return self.item_response(item, etag)

        if "update" in operations:

            @router.patch(
                "/{item_id}",
                operation_id=f"{plural}-update",
                response_model=resource.public,
                responses=problem_responses(*write_errors),
            )
            async def update_item(
                request: Request,
                item_id: ItemId,
                data: Update,  # type: ignore[valid-type]
                viewer: WriteViewer,
                if_match: IfMatch = None,
            ) -> Any:
                changes = data.model_dump(exclude_unset=True)  # type: ignore[attr-defined]
                return await write(request, item_id, changes, viewer, if_match)

        if "replace" in operations:

            @router.put(
                "/{item_id}",
                operation_id=f"{plural}-replace",
                response_model=resource.public,
                responses=problem_responses(*write_errors),
            )
            async def replace_item(
                request: Request,
                item_id: ItemId,
                data: Create,  # type: ignore[valid-type]
                viewer: WriteViewer,
                if_match: IfMatch = None,
            ) -> Any:
                changes = data.model_dump()  # type: ignore[attr-defined]
                return await write(request, item_id, changes, viewer, if_match)

        if "delete" in operations:

            @router.delete(
                "/{item_id}",
                operation_id=f"{plural}-delete",
                status_code=status.HTTP_204_NO_CONTENT,
                response_class=Response,
                responses=problem_responses(400, 401, 403, 404, 412, 422),
            )
            async def delete_item(
                request: Request,
                item_id: ItemId,
                viewer: WriteViewer,
                if_match: IfMatch = None,
            ) -> None:
                tags = parse_if_match(if_match, embeds)
                async with request.app.state.db.connect() as connection:
                    await repository.delete(connection, item_id, viewer, tags)

        for parent in resource.parents:
            if parent.nested_list and "list" in operations:
                routers.append(self.nested_list_router(parent.field, parent.resource))
        for hook in resource.extra_routes:
            hook(router, resource, self.viewers)
        return routers

    def nested_list_router(self, field: str, parent: Resource) -> APIRouter:
        """`GET /<parent>/{id}/<plural>`: the list contract, scoped to one visible parent."""
        parent_repository = Repository(parent)
        ReadViewer = Annotated[Viewer, Depends(self.read_viewer)]
        router = APIRouter(prefix=f"/{parent.plural}", tags=[self.resource.plural])

        @router.get(
            f"/{{parent_id}}/{self.resource.plural}",
            operation_id=f"{self.resource.plural}-list-by-{parent.name.lower()}",
            response_model=self.list_model,
            responses=problem_responses(*self.read_errors, 404, 422),
            openapi_extra={"parameters": self.query.openapi_parameters},
        )
        async def list_children(
            request: Request,
            parent_id: Annotated[int, Path(ge=1, le=MAX_ID)],
            viewer: ReadViewer,
        ) -> Any:
            return await self.list_page(
                request,
                self.query.parse(request.query_params),
                viewer,
                scope={field: parent_id},
                parent=(parent_repository, parent_id),
            )

        return router


def build_routers(resource: Resource, viewers: ViewerDeps) -> list[APIRouter]:
    """The resource's router, plus one per nested list it declares."""
    return ResourceRoutes(resource, viewers).build()
