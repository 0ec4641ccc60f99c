"""The bulk routes of one resource: `POST`, `PATCH` and `DELETE /<plural>/batch`.

Bodies are JSON arrays of 1 to BULK_MAX_ITEMS items: Create items; `{id, if_match?, ...}`
changes; ids or `{id, if_match?}`. Answers name each item by its index in the array.
"""

from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

from fastapi import Body, Depends, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, create_model

from app.core.errors import ProblemError, Unprocessable
from app.core.problem_docs import problem_responses
from app.crud import idempotency
from app.crud.bulk import BulkWrites, Target, bounded, refusal_at
from app.crud.etag import parse_if_match
from app.crud.resource import Viewer
from app.crud.responses import database, json_response
from app.crud.route_params import MAX_ID, IdempotencyKeyHeader

if TYPE_CHECKING:
    from app.crud.router import ResourceRoutes

IF_MATCH = "Write only if the record still has this ETag (else 412, and nothing is written)"


BareId = Annotated[int, Field(ge=1, le=MAX_ID)]  # a delete item: an id alone


def _id_field() -> Any:
    return (int, Field(ge=1, le=MAX_ID, description="The record's id"))


def _if_match_field() -> Any:
    return (str | None, Field(None, max_length=1024, description=IF_MATCH))


def tags_of(index: int, if_match: str | None) -> list[int] | None:
    """An item's `if_match`, read as the `If-Match` header is (400 names the item)."""
    try:
        return parse_if_match(if_match)
    except ProblemError as error:
        raise refusal_at(index, error) from None


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return problem_responses(400, 401, *statuses, 413, 422)


class BulkRoutes:
    """Adds the bulk routes to a resource's `ResourceRoutes` (app/crud/router.py)."""

    def __init__(self, routes: "ResourceRoutes") -> None:
        self.routes = routes
        self.writes = BulkWrites(routes.repository)
        resource = routes.resource
        name = resource.name
        entry = routes.representation.written_model
        self.result_model = create_model(f"{name}BulkResult", items=(list[entry], ...))  # type: ignore[valid-type]  # a runtime type
        self.update_model = create_model(
            f"{name}BulkUpdate",
            __base__=resource.update,
            id=_id_field(),
            if_match=_if_match_field(),
        )
        self.delete_model = create_model(
            f"{name}BulkDelete",
            __config__=ConfigDict(extra="forbid"),
            id=_id_field(),
            if_match=_if_match_field(),
        )

    def add(self) -> None:
        self.add_create()
        self.add_update()
        self.add_delete()

    def check_count(self, request: Request, items: list[Any]) -> None:
        limit = request.app.state.settings.BULK_MAX_ITEMS
        if len(items) > limit:
            message = f"at most {limit} items per request (BULK_MAX_ITEMS), {len(items)} sent"
            raise Unprocessable(
                message, errors=[{"loc": ["body"], "msg": message, "type": "too_long"}]
            )

    @staticmethod
    def check_unique(ids: list[int]) -> None:
        seen: dict[int, int] = {}
        errors = []
        for index, item_id in enumerate(ids):
            if item_id in seen:
                message = f"id {item_id} is also item {seen[item_id]}"
                errors.append({"loc": ["body", index, "id"], "msg": message, "type": "duplicate"})
            seen.setdefault(item_id, index)
        if errors:
            raise Unprocessable("Each id may appear once", errors=errors)

    def answer(self, result: dict[str, Any], status_code: int = 200) -> Response:
        body = self.routes.representation.encode(self.result_model, result)
        return json_response(body, status_code)

    def add_create(self) -> None:
        routes = self.routes
        Writer: TypeAlias = Annotated[Viewer, Depends(routes.write_viewer)]
        Create = routes.resource.create
        plural = routes.resource.plural

        @routes.router.post(
            "/batch",
            operation_id=f"{plural}-create-many",
            summary=f"Create several {plural}",
            description=(
                f"1 to BULK_MAX_ITEMS {plural} in one transaction: all are created, or none. "
                "201 with each one's representation and ETag, in request order. A refused "
                "item (a parent that is not there, a unique value taken) is named by its index. "
                "An `Idempotency-Key` makes retries safe."
            ),
            status_code=status.HTTP_201_CREATED,
            response_model=self.result_model,
            responses=_errors(403, 409),
        )
        async def create_many(
            request: Request,
            items: Annotated[list[Create], Body(min_length=1)],  # type: ignore[valid-type]  # the resource's runtime schema
            viewer: Writer,
            idempotency_key: IdempotencyKeyHeader = None,
        ) -> Response:
            self.check_count(request, items)
            routes.repository.access.check_may_create(viewer)
            bodies: list[BaseModel] = items
            key = None
            if idempotency_key is not None:
                assert viewer.id is not None
                payload = [body.model_dump(mode="json") for body in bodies]
                key = idempotency.request_key(viewer.id, idempotency_key, request.url.path, payload)
            rows = [body.model_dump() for body in bodies]
            async with bounded(request.app.state.settings):
                result = await self.writes.create_many(
                    database(request), rows, viewer, key, routes.expansion(request)
                )
            return self.answer(result, status.HTTP_201_CREATED)

    def add_update(self) -> None:
        routes = self.routes
        Writer: TypeAlias = Annotated[Viewer, Depends(routes.write_viewer)]
        Update = self.update_model
        plural = routes.resource.plural

        @routes.router.patch(
            "/batch",
            operation_id=f"{plural}-update-many",
            summary=f"Update several {plural} (partial)",
            description=(
                "1 to BULK_MAX_ITEMS changes, each `{id, if_match?, ...fields}`, in one "
                "transaction: all rows change, or none. Every row is checked as a single "
                "update is: if any is invisible (404), not the caller's (403) or has changed "
                "since its `if_match` (412), nothing changes and `errors` names each index."
            ),
            response_model=self.result_model,
            responses=_errors(403, 404, 409, 412),
        )
        async def update_many(
            request: Request,
            items: Annotated[list[Update], Body(min_length=1)],  # type: ignore[valid-type]  # a runtime schema
            viewer: Writer,
        ) -> Response:
            self.check_count(request, items)
            bodies: list[Any] = items
            self.check_unique([body.id for body in bodies])
            targets = [
                Target(
                    body.id,
                    tags_of(index, body.if_match),
                    body.model_dump(exclude_unset=True, exclude={"id", "if_match"}),
                )
                for index, body in enumerate(bodies)
            ]
            async with bounded(request.app.state.settings):
                result = await self.writes.update_many(
                    database(request), targets, viewer, routes.expansion(request)
                )
            return self.answer(result)

    def add_delete(self) -> None:
        routes = self.routes
        Writer: TypeAlias = Annotated[Viewer, Depends(routes.write_viewer)]
        Delete = self.delete_model
        plural = routes.resource.plural

        @routes.router.delete(
            "/batch",
            operation_id=f"{plural}-delete-many",
            summary=f"Delete several {plural}",
            description=(
                "1 to BULK_MAX_ITEMS ids, or `{id, if_match?}` objects, in one transaction: "
                "all rows go, or none (checked as single deletes are; `errors` names each "
                "refused index). 204 without a body."
            ),
            status_code=status.HTTP_204_NO_CONTENT,
            response_class=Response,
            responses=_errors(403, 404, 412),
        )
        async def delete_many(
            request: Request,
            items: Annotated[list[BareId | Delete], Body(min_length=1)],  # type: ignore[valid-type]  # a runtime schema
            viewer: Writer,
        ) -> None:
            self.check_count(request, items)
            targets = [
                Target(item, None)
                if isinstance(item, int)
                else Target(item.id, tags_of(index, item.if_match))
                for index, item in enumerate(items)
            ]
            self.check_unique([target.item_id for target in targets])
            async with bounded(request.app.state.settings):
                await self.writes.delete_many(database(request), targets, viewer)
