"""Turns a resource declaration into documented FastAPI routes, one method per operation.

The endpoints are closures whose annotations are the resource's runtime schemas, so FastAPI
validates and documents them; keep `from __future__ import annotations` out of this module.
"""

from typing import Annotated, Any, TypeAlias, cast

from fastapi import APIRouter, Depends, Path, Request, Response, status
from pydantic import BaseModel

from app.core.problem_docs import problem_responses
from app.core.replica import reads_primary
from app.crud import docs, idempotency
from app.crud.bulk_routes import BulkRoutes
from app.crud.etag import none_match, parse_if_match
from app.crud.expand import Expansion, expand_parameter, parse_expand
from app.crud.listing import Listing
from app.crud.repository import ParentScope, Repository
from app.crud.representation import Representation
from app.crud.resource import Read, Resource, Viewer, ViewerDeps
from app.crud.responses import database, json_response
from app.crud.route_params import (
    MAX_ID,
    READ_ERRORS,
    WRITE_ERRORS,
    IdempotencyKeyHeader,
    IfMatch,
    IfNoneMatch,
    ItemId,
)
from app.crud.sparse import FieldSet, fields_parameter, parse_fields
from app.crud.sync.routes import SyncRoutes
from app.crud.upsert_routes import UpsertRoutes


class ResourceRoutes:
    """The generated routes of one resource and the pieces they share."""

    def __init__(self, resource: Resource, viewers: ViewerDeps) -> None:
        self.resource = resource
        self.repository = Repository(resource)
        self.relations = self.repository.relations
        self.representation = Representation(resource, self.relations)
        self.listing = Listing(resource, self.repository, self.representation)
        # `expand` on get and writes too (the list documents it with its other parameters).
        expand = [expand_parameter(self.relations)] if resource.expand else []
        self.expand_docs = {"parameters": expand} if expand else None
        fields = fields_parameter(self.representation.selectable)
        self.read_docs = {"parameters": [*expand, fields]}
        self.viewers = viewers
        self.read_viewer = viewers.optional if resource.read is Read.PUBLIC else viewers.required
        self.write_viewer = viewers.required
        self.router = APIRouter(prefix=f"/{resource.plural}", tags=[resource.plural])

    def expansion(self, request: Request) -> Expansion:
        """The relations a get or write request asks its answer to nest."""
        return parse_expand(request.query_params.getlist("expand"), self.relations)

    def build(self) -> list[APIRouter]:
        """The resource's router, plus one per nested list it declares."""
        operations = self.resource.operations
        if "list" in operations:
            self.add_list()
        # Before `/{item_id}`, which `/batch` would match too.
        bulk = BulkRoutes(self) if self.resource.bulk else None
        if bulk is not None:
            bulk.add()
        if self.resource.upsert_key is not None:
            UpsertRoutes(self).add(bulk)
        if self.resource.sync and "list" in operations:
            SyncRoutes(self).add()
        if "get" in operations:
            self.add_get()
        if "create" in operations:
            self.add_create()
        if "update" in operations:
            self.add_write("PATCH", "update", self.resource.update, partial=True)
        if "replace" in operations:
            self.add_write("PUT", "replace", self.resource.create, partial=False)
        if "delete" in operations:
            self.add_delete()
        routers = [self.router]
        for parent in self.resource.parents:
            if parent.nested_list and "list" in operations:
                routers.append(self.nested_list_router(parent.field, parent.resource))
        return routers

    # -- reads ------------------------------------------------------------------------------

    def add_list(self) -> None:
        Reader: TypeAlias = Annotated[Viewer, Depends(self.read_viewer)]

        @self.router.get(
            "",
            operation_id=f"{self.resource.plural}-list",
            **docs.route_docs(self.resource, "list"),
            response_model=self.representation.list_model,
            responses=problem_responses(*READ_ERRORS, 422),
            openapi_extra={"parameters": self.listing.query.openapi_parameters},
        )
        async def list_items(request: Request, viewer: Reader) -> Any:
            return await self.listing.page(request, viewer)

    def nested_list_router(self, field: str, parent: Resource) -> APIRouter:
        """`GET /<parent>/{id}/<plural>`: the list contract, scoped to one visible parent."""
        Reader: TypeAlias = Annotated[Viewer, Depends(self.read_viewer)]
        parent_repository = Repository(parent)
        router = APIRouter(prefix=f"/{parent.plural}", tags=[self.resource.plural])

        @router.get(
            f"/{{parent_id}}/{self.resource.plural}",
            operation_id=f"{self.resource.plural}-list-by-{parent.name.lower()}",
            summary=docs.nested_summary(self.resource, parent),
            description=docs.nested_description(self.resource, parent),
            response_model=self.representation.list_model,
            responses=problem_responses(*READ_ERRORS, 404, 422),
            openapi_extra={"parameters": self.listing.query.openapi_parameters},
        )
        async def list_children(
            request: Request,
            parent_id: Annotated[int, Path(ge=1, le=MAX_ID)],
            viewer: Reader,
        ) -> Any:
            parent_scope = ParentScope(parent_repository, parent_id)
            return await self.listing.page(request, viewer, {field: parent_id}, parent_scope)

        return router

    def add_get(self) -> None:
        Reader: TypeAlias = Annotated[Viewer, Depends(self.read_viewer)]
        plural = self.resource.plural

        @self.router.get(
            "/{item_id}",
            name=f"{plural}-get",
            operation_id=f"{plural}-get",
            **docs.route_docs(self.resource, "get"),
            response_model=self.representation.item_model,
            openapi_extra=self.read_docs,
            # 400: a malformed If-None-Match
            responses={
                304: {"description": "Not modified"},
                **problem_responses(400, *READ_ERRORS, 404, 422),
            },
        )
        async def get_item(
            request: Request,
            item_id: ItemId,
            viewer: Reader,
            if_none_match: IfNoneMatch = None,
        ) -> Any:
            expansion = self.expansion(request)
            selected = request.query_params.getlist("fields")
            fieldset = parse_fields(selected, self.representation.selectable)
            return await self.read(request, item_id, viewer, expansion, if_none_match, fieldset)

    async def read(
        self,
        request: Request,
        item_id: int,
        viewer: Viewer,
        expansion: Expansion,
        if_none_match: str | None,
        fieldset: FieldSet | None = None,
    ) -> Response:
        """One item and its ETag, or 304 when `If-None-Match` names that tag."""
        item, etag = await self.repository.get(
            database(request), item_id, viewer, expansion, fresh=reads_primary(request)
        )
        if none_match(if_none_match, etag):
            return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
        return json_response(self.representation.item(item, fieldset), etag=etag)

    # -- writes -----------------------------------------------------------------------------

    def add_create(self) -> None:
        Writer: TypeAlias = Annotated[Viewer, Depends(self.write_viewer)]
        Create = self.resource.create

        @self.router.post(
            "",
            operation_id=f"{self.resource.plural}-create",
            **docs.route_docs(self.resource, "create"),
            status_code=status.HTTP_201_CREATED,
            response_model=self.representation.item_model,
            openapi_extra=self.expand_docs,
            responses=problem_responses(401, 403, 409, 422),
        )
        async def create_item(
            request: Request,
            data: Create,  # type: ignore[valid-type]  # the resource's runtime schema
            viewer: Writer,
            idempotency_key: IdempotencyKeyHeader = None,
        ) -> Any:
            body = cast(BaseModel, data)
            values = body.model_dump()
            expansion = self.expansion(request)
            return await self.create(request, values, body, viewer, idempotency_key, expansion)

    async def create(
        self,
        request: Request,
        values: dict[str, Any],
        body: BaseModel,
        viewer: Viewer,
        idempotency_key: str | None,
        expansion: Expansion,
    ) -> Response:
        """Insert `values` (from `body`, as sent): 201 with the item, its ETag and Location."""
        self.repository.access.check_may_create(viewer)
        key = None
        if idempotency_key is not None:
            assert viewer.id is not None
            payload = body.model_dump(mode="json")
            key = idempotency.request_key(viewer.id, idempotency_key, request.url.path, payload)
        item, etag = await self.repository.create(database(request), values, viewer, key, expansion)
        response = json_response(self.representation.item(item), status.HTTP_201_CREATED, etag)
        # The create path plus the id: url_for() would search every route.
        location = request.url.replace(path=f"{request.url.path}/{item['id']}", query="")
        response.headers["Location"] = str(location)
        return response

    def add_write(
        self, method: str, operation: str, schema: type[BaseModel], partial: bool
    ) -> None:
        """PATCH (`partial`: the fields sent) and PUT (every field of the Create schema): one
        conditional update of the given fields."""
        Writer: TypeAlias = Annotated[Viewer, Depends(self.write_viewer)]
        Body = schema

        @self.router.api_route(
            "/{item_id}",
            methods=[method],
            name=f"{operation}_item",
            operation_id=f"{self.resource.plural}-{operation}",
            **docs.route_docs(self.resource, operation),
            response_model=self.representation.item_model,
            openapi_extra=self.expand_docs,
            responses=problem_responses(*WRITE_ERRORS),
        )
        async def write_item(
            request: Request,
            item_id: ItemId,
            data: Body,  # type: ignore[valid-type]  # the resource's runtime schema
            viewer: Writer,
            if_match: IfMatch = None,
        ) -> Any:
            changes = cast(BaseModel, data).model_dump(exclude_unset=partial)
            expansion = self.expansion(request)
            return await self.update(request, item_id, changes, viewer, if_match, expansion)

    async def update(
        self,
        request: Request,
        item_id: int,
        changes: dict[str, Any],
        viewer: Viewer,
        if_match: str | None,
        expansion: Expansion,
    ) -> Response:
        """Write `changes` (only if the record still has a tag `If-Match` names): the item and
        its new ETag."""
        tags, db = parse_if_match(if_match), database(request)
        item, etag = await self.repository.update(db, item_id, changes, viewer, tags, expansion)
        return json_response(self.representation.item(item), etag=etag)

    def add_delete(self) -> None:
        Writer: TypeAlias = Annotated[Viewer, Depends(self.write_viewer)]

        @self.router.delete(
            "/{item_id}",
            operation_id=f"{self.resource.plural}-delete",
            **docs.route_docs(self.resource, "delete"),
            status_code=status.HTTP_204_NO_CONTENT,
            response_class=Response,
            responses=problem_responses(400, 401, 403, 404, 412, 422),
        )
        async def delete_item(
            request: Request,
            item_id: ItemId,
            viewer: Writer,
            if_match: IfMatch = None,
        ) -> None:
            tags = parse_if_match(if_match)
            await self.repository.delete(database(request), item_id, viewer, tags)


def build_routers(resource: Resource, viewers: ViewerDeps) -> list[APIRouter]:
    """The resource's router, plus one per nested list it declares."""
    return ResourceRoutes(resource, viewers).build()
