"""Turns a resource declaration into documented FastAPI routes.

The endpoints are closures whose annotations are the resource's runtime schemas, so FastAPI
validates and documents them; keep `from __future__ import annotations` out of this module.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from pydantic import TypeAdapter
from starlette.datastructures import URL

from app.core.errors import Forbidden, NotFound, problem_responses
from app.crud.pagination import page_model, set_page_headers
from app.crud.params import list_params_model
from app.crud.repository import Repository
from app.crud.resource import Read, Resource, Viewer, ViewerDeps, Write

MAX_ID = 2**31 - 1
JSON = "application/json"
ItemId = Annotated[int, Path(ge=1, le=MAX_ID, description="The record's id")]


def json_response(body: bytes, status_code: int = 200) -> Response:
    return Response(body, status_code=status_code, media_type=JSON)


class ResourceRoutes:
    """The generated routes of one resource and the pieces they share."""

    def __init__(self, resource: Resource, viewers: ViewerDeps) -> None:
        self.resource = resource
        self.repository = Repository(resource)
        self.viewers = viewers
        self.list_model = page_model(resource.public)
        self.params_model = list_params_model(resource, resource.default_sort)
        self.item_adapter = TypeAdapter(resource.public)
        self.page_adapter = TypeAdapter(self.list_model)
        public_read = resource.read is Read.PUBLIC
        self.read_viewer = viewers.optional if public_read else viewers.required
        self.read_errors = () if public_read else (401,)

    def page_response(
        self, url: URL, items: list[dict[str, Any]], total: int, limit: int, offset: int
    ) -> Response:
        page = {"items": items, "total": total, "limit": limit, "offset": offset}
        response = json_response(
            self.page_adapter.dump_json(self.page_adapter.validate_python(page))
        )
        set_page_headers(response, url, total=total, limit=limit, offset=offset)
        return response

    def item_response(self, item: dict[str, Any], status_code: int = 200) -> Response:
        model = self.item_adapter.validate_python(item)
        return json_response(self.item_adapter.dump_json(model), status_code)

    def check_may_create(self, viewer: Viewer) -> None:
        if self.resource.write is Write.SUPERUSER and not viewer.is_superuser:
            raise Forbidden(f"Only superusers may create {self.resource.plural}")

    def build(self) -> list[APIRouter]:
        resource, repository = self.resource, self.repository
        plural, operations = resource.plural, resource.operations
        router = APIRouter(prefix=f"/{plural}", tags=[plural])
        routers = [router]
        ReadViewer = Annotated[Viewer, Depends(self.read_viewer)]
        WriteViewer = Annotated[Viewer, Depends(self.viewers.required)]
        Params = Annotated[self.params_model, Query()]  # type: ignore[name-defined]
        Create = resource.create
        Update = resource.update

        if "list" in operations:

            @router.get(
                "",
                operation_id=f"{plural}-list",
                response_model=self.list_model,
                responses=problem_responses(*self.read_errors, 422),
            )
            async def list_items(request: Request, params: Params, viewer: ReadViewer) -> Any:
                values = params.model_dump()
                async with request.app.state.read_engine.connect() as connection:
                    items, total = await repository.page(connection, values, viewer)
                return self.page_response(
                    request.url, items, total, values["limit"], values["offset"]
                )

        if "get" in operations:

            @router.get(
                "/{item_id}",
                name=f"{plural}-get",
                operation_id=f"{plural}-get",
                response_model=resource.public,
                responses=problem_responses(*self.read_errors, 404, 422),
            )
            async def get_item(request: Request, item_id: ItemId, viewer: ReadViewer) -> Any:
                async with request.app.state.read_engine.connect() as connection:
                    item = await repository.get(connection, item_id, viewer)
                return self.item_response(item)

        if "create" in operations:

            @router.post(
                "",
                operation_id=f"{plural}-create",
                status_code=status.HTTP_201_CREATED,
                response_model=resource.public,
                responses=problem_responses(401, 403, 409, 422),
            )
            async def create_item(request: Request, data: Create, viewer: WriteViewer) -> Any:  # type: ignore[valid-type]
                self.check_may_create(viewer)
                async with request.app.state.engine.begin() as connection:
                    item = await repository.create(connection, data.model_dump(), viewer)  # type: ignore[attr-defined]
                response = self.item_response(item, status.HTTP_201_CREATED)
                location = request.url_for(f"{plural}-get", item_id=item["id"])
                response.headers["Location"] = str(location)
                return response

        if "update" in operations:

            @router.patch(
                "/{item_id}",
                operation_id=f"{plural}-update",
                response_model=resource.public,
                responses=problem_responses(401, 403, 404, 409, 412, 422),
            )
            async def update_item(
                request: Request,
                item_id: ItemId,
                data: Update,  # type: ignore[valid-type]
                viewer: WriteViewer,
            ) -> Any:
                changes = data.model_dump(exclude_unset=True)  # type: ignore[attr-defined]
                async with request.app.state.engine.begin() as connection:
                    item = await repository.update(connection, item_id, changes, viewer)
                return self.item_response(item)

        if "delete" in operations:

            @router.delete(
                "/{item_id}",
                operation_id=f"{plural}-delete",
                status_code=status.HTTP_204_NO_CONTENT,
                responses=problem_responses(401, 403, 404, 412, 422),
            )
            async def delete_item(request: Request, item_id: ItemId, viewer: WriteViewer) -> None:
                async with request.app.state.engine.begin() as connection:
                    await repository.delete(connection, item_id, viewer)

        for parent in resource.parents:
            if parent.nested_list and "list" in operations:
                routers.append(self.nested_list_router(parent.field, parent.resource, Params))
        for hook in resource.extra_routes:
            hook(router, resource, self.viewers)
        return routers

    def nested_list_router(self, field: str, parent: Resource, Params: Any) -> APIRouter:
        """`GET /<parent>/{id}/<plural>`: the list contract, scoped to one visible parent."""
        repository, parent_repository = self.repository, Repository(parent)
        ReadViewer = Annotated[Viewer, Depends(self.read_viewer)]
        router = APIRouter(prefix=f"/{parent.plural}", tags=[self.resource.plural])

        @router.get(
            f"/{{parent_id}}/{self.resource.plural}",
            operation_id=f"{self.resource.plural}-list-by-{parent.name.lower()}",
            response_model=self.list_model,
            responses=problem_responses(*self.read_errors, 404, 422),
        )
        async def list_children(
            request: Request,
            parent_id: Annotated[int, Path(ge=1, le=MAX_ID)],
            params: Params,
            viewer: ReadViewer,
        ) -> Any:
            values = params.model_dump()
            async with request.app.state.read_engine.connect() as connection:
                if not await parent_repository.exists_visible(connection, parent_id, viewer):
                    raise NotFound(f"{parent.name} {parent_id} not found")
                items, total = await repository.page(
                    connection, values, viewer, scope={field: parent_id}
                )
            return self.page_response(request.url, items, total, values["limit"], values["offset"])

        return router


def build_routers(resource: Resource, viewers: ViewerDeps) -> list[APIRouter]:
    """The resource's router, plus one per nested list it declares."""
    return ResourceRoutes(resource, viewers).build()
