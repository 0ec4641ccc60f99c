"""A dialect's routes for one resource: list, get, create, update (PUT and PATCH), delete.

Each runs the generic layer's own pieces (the resource's `Listing`, `Repository` and
`Representation`, its viewers and policies, ETags and Idempotency-Key), so only the list
query and the list's framing differ from `/api/v1`.
"""

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, TypeAlias

from fastapi import APIRouter, Body, Depends, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.datastructures import QueryParams

from app.core.errors import VALIDATION_DETAIL, ProblemError, Unprocessable, error_response
from app.core.problem_docs import problem_responses
from app.crud import docs
from app.crud.dialects.bodies import lenient_model, written
from app.crud.dialects.query import FilterKeys, Translated, reword
from app.crud.etag import parse_if_match
from app.crud.expand import Expansion, parse_expand
from app.crud.listing import Listing
from app.crud.plan import sortable
from app.crud.resource import Viewer
from app.crud.responses import JSON, database, json_response
from app.crud.route_params import (
    READ_ERRORS,
    WRITE_ERRORS,
    IdempotencyKeyHeader,
    IfMatch,
    IfNoneMatch,
    ItemId,
)
from app.crud.router import ResourceRoutes


@dataclass(frozen=True)
class Dialect:
    """What makes a dialect: its list query and how its list tells the total."""

    name: str  # its URL segment under /api/compat, and its OpenAPI tag
    description: str
    translate: Callable[[QueryParams, FilterKeys], Translated]
    embedded: Callable[[QueryParams], list[str]]  # `expand` of a get or write
    headers: Callable[[str, int, int, int], dict[str, str]]  # (plural, offset, count, total)
    header_docs: dict[str, Any]
    # the list's OpenAPI parameters: (filter keys and sorts, searchable?, expandable names)
    parameters: Callable[[FilterKeys, bool, list[str]], list[dict[str, Any]]]


class DialectRoutes:
    """One resource's routes in one dialect, from its `/api/v1` `ResourceRoutes`."""

    def __init__(self, routes: ResourceRoutes, dialect: Dialect) -> None:
        self.routes = routes
        self.dialect = dialect
        resource = routes.resource
        [key] = resource.sa_table.primary_key.columns
        # `id` is always a filter here: getMany asks for rows by id.
        self.listing = Listing(
            resource, routes.repository, routes.representation, extra_filters=(key.name,)
        )
        self.keys = FilterKeys(self.listing.query.filters, sortable(resource, routes.relations))
        self.operation = f"{dialect.name}-{resource.plural}"
        self.router = APIRouter(
            prefix=f"/{resource.plural}", tags=[dialect.name], route_class=DialectRoute
        )
        shown = tuple(routes.representation.item_model.model_fields)
        self.create_model = lenient_model(resource.create, shown, f"{resource.name}DialectCreate")
        self.update_model = lenient_model(resource.update, shown, f"{resource.name}DialectUpdate")

    def docs(self, operation: str, method: str | None = None) -> dict[str, Any]:
        """The `/api/v1` operation's summary and description, naming the dialect."""
        base = docs.route_docs(self.routes.resource, operation)
        tag = self.dialect.name if method is None else f"{self.dialect.name}, {method}"
        summary = base["summary"].removesuffix(" (partial)") + f" ({tag})"
        return {"summary": summary, "description": base["description"]}

    def expansion(self, request: Request) -> Expansion:
        return parse_expand(self.dialect.embedded(request.query_params), self.routes.relations)

    def build(self) -> APIRouter:
        operations = self.routes.resource.operations
        if "list" in operations:
            self.add_list()
        if "get" in operations:
            self.add_get()
        if "create" in operations:
            self.add_create()
        if "update" in operations:
            for method in ("PUT", "PATCH"):
                self.add_update(method)
        if "delete" in operations:
            self.add_delete()
        return self.router

    def add_list(self) -> None:
        Reader: TypeAlias = Annotated[Viewer, Depends(self.routes.read_viewer)]
        resource, representation = self.routes.resource, self.routes.representation
        relations = self.routes.relations
        parameters = self.dialect.parameters(
            self.keys,
            bool(resource.search_fields),
            list(relations.names) if resource.expand else [],
        )

        @self.router.get(
            "",
            operation_id=f"{self.operation}-list",
            summary=f"{docs.summaries(resource)['list']} ({self.dialect.name})",
            description=f"{self.dialect.description} {docs.access_rule(resource, 'list')}",
            response_model=list[representation.item_model],  # type: ignore[name-defined]  # a runtime type
            responses={
                200: {"headers": self.dialect.header_docs},
                **problem_responses(*READ_ERRORS, 422),
            },
            openapi_extra={"parameters": parameters},
        )
        async def list_items(request: Request, viewer: Reader) -> Response:
            translated = self.dialect.translate(request.query_params, self.keys)
            try:
                fetched = await self.listing.fetch(request, QueryParams(translated.pairs), viewer)
            except (RequestValidationError, Unprocessable) as error:
                raise reword(error, translated.origins) from None
            page, offset = fetched.page, fetched.offset or 0
            assert page.total is not None  # offset pages are counted
            headers = self.dialect.headers(resource.plural, offset, len(page.items), page.total)
            return Response(representation.items(page.items), media_type=JSON, headers=headers)

    def add_get(self) -> None:
        Reader: TypeAlias = Annotated[Viewer, Depends(self.routes.read_viewer)]
        routes = self.routes

        @self.router.get(
            "/{item_id}",
            operation_id=f"{self.operation}-get",
            **self.docs("get"),
            response_model=routes.representation.item_model,
            responses={
                304: {"description": "Not modified"},
                **problem_responses(400, *READ_ERRORS, 404, 422),
            },
        )
        async def get_item(
            request: Request, item_id: ItemId, viewer: Reader, if_none_match: IfNoneMatch = None
        ) -> Response:
            expansion = self.expansion(request)
            return await routes.read(request, item_id, viewer, expansion, if_none_match)

    def add_create(self) -> None:
        Writer: TypeAlias = Annotated[Viewer, Depends(self.routes.write_viewer)]
        routes, Create = self.routes, self.create_model

        @self.router.post(
            "",
            operation_id=f"{self.operation}-create",
            **self.docs("create"),
            status_code=status.HTTP_201_CREATED,
            response_model=routes.representation.item_model,
            responses=problem_responses(401, 403, 409, 422),
        )
        async def create_item(
            request: Request,
            data: Create,  # type: ignore[valid-type]  # the resource's runtime schema
            viewer: Writer,
            idempotency_key: IdempotencyKeyHeader = None,
        ) -> Response:
            values = written(data, routes.resource.create, partial=False)
            expansion = self.expansion(request)
            return await routes.create(request, values, data, viewer, idempotency_key, expansion)

    def add_update(self, method: str) -> None:
        """PUT as react-admin sends it (the whole record, or on updateMany only the changed
        fields) and PATCH as refine does: either writes the writable fields sent."""
        Writer: TypeAlias = Annotated[Viewer, Depends(self.routes.write_viewer)]
        routes, Update = self.routes, self.update_model

        @self.router.api_route(
            "/{item_id}",
            methods=[method],
            operation_id=f"{self.operation}-{'replace' if method == 'PUT' else 'update'}",
            **self.docs("update", method),
            response_model=routes.representation.item_model,
            responses=problem_responses(*WRITE_ERRORS),
        )
        async def update_item(
            request: Request,
            item_id: ItemId,
            data: Annotated[Update, Body()],  # type: ignore[valid-type]  # the resource's runtime schema
            viewer: Writer,
            if_match: IfMatch = None,
        ) -> Response:
            changes = written(data, routes.resource.update, partial=True)
            expansion = self.expansion(request)
            return await routes.update(request, item_id, changes, viewer, if_match, expansion)

    def add_delete(self) -> None:
        Writer: TypeAlias = Annotated[Viewer, Depends(self.routes.write_viewer)]
        routes = self.routes

        @self.router.delete(
            "/{item_id}",
            operation_id=f"{self.operation}-delete",
            summary=self.docs("delete")["summary"],
            description=self.docs("delete")["description"].replace(
                "204 without a body", "200 with the deleted record (react-admin reads its `id`)"
            ),
            response_model=routes.representation.item_model,
            responses=problem_responses(400, 401, 403, 404, 412, 422),
        )
        async def delete_item(
            request: Request, item_id: ItemId, viewer: Writer, if_match: IfMatch = None
        ) -> Response:
            db, tags = database(request), parse_if_match(if_match)
            item, _ = await routes.repository.get(db, item_id, viewer, self.expansion(request))
            await routes.repository.delete(db, item_id, viewer, tags)
            return json_response(routes.representation.item(item))


class DialectRoute(APIRoute):
    """A dialect's route: its problem answers also carry `message`, which react-admin's and
    refine's providers show the user (for a 422, the first invalid field and why)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except (ProblemError, RequestValidationError) as error:
                return error_response(error, {"message": message_of(error)})

        return handle


def message_of(error: ProblemError | RequestValidationError) -> str:
    items = error.errors() if isinstance(error, RequestValidationError) else error.errors
    if not items:
        return error.detail if isinstance(error, ProblemError) else VALIDATION_DETAIL
    first = items[0]
    where = ".".join(str(part) for part in first["loc"][1:])
    return f"{where}: {first['msg']}" if where else str(first["msg"])
