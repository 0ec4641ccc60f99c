"""The upsert routes of a resource with an `upsert_key`: `PUT /<plural>/by-<key>/{value}`
(one row) and, with bulk writes, `PUT /<plural>/batch` (many, all or nothing)."""

from typing import TYPE_CHECKING, Annotated, Any, Optional, TypeAlias

from fastapi import Body, Depends, Header, Path, Request, Response, status
from pydantic import BaseModel, Field, create_model

from app.core.errors import Unprocessable
from app.core.problem_docs import problem_responses
from app.crud.bulk import bounded
from app.crud.etag import parse_if_match
from app.crud.fields import python_type
from app.crud.resource import Viewer
from app.crud.responses import database, json_response
from app.crud.route_params import IfMatch
from app.crud.upsert import Upserts

if TYPE_CHECKING:
    from app.crud.bulk_routes import BulkRoutes
    from app.crud.router import ResourceRoutes

IfNoneMatchStar = Annotated[
    str | None, Header(description="`*`: create only; 412 when a row has this key")
]


class UpsertRoutes:
    def __init__(self, routes: "ResourceRoutes") -> None:
        self.routes = routes
        self.upserts = Upserts(routes.repository)
        resource = routes.resource
        self.key = self.upserts.key
        # The path names the key: the body may leave it out (or repeat it).
        field = resource.create.model_fields.get(self.key)
        kind: Any = field.annotation if field is not None else str
        optional: dict[str, Any] = {self.key: (Optional[kind], Field(None))}  # noqa: UP045  # a runtime type
        self.one_model: type[BaseModel] = create_model(
            f"{resource.name}Upsert", __base__=resource.create, **optional
        )

    def add(self, bulk: "BulkRoutes | None") -> None:
        self.add_one()
        if bulk is not None:
            self.add_many(bulk)

    def add_one(self) -> None:
        routes, key = self.routes, self.key
        Writer: TypeAlias = Annotated[Viewer, Depends(routes.write_viewer)]
        UpsertBody = self.one_model
        plural, name = routes.resource.plural, routes.resource.singular
        Value: Any = Annotated[python_type(routes.resource, key), Path(description=f"The {key}")]

        @routes.router.put(
            f"/by-{key.replace('_', '-')}/{{value}}",
            operation_id=f"{plural}-upsert",
            summary=f"Create or replace a {name} by its {key}",
            description=(
                f"201 when no {name} has this {key} yet, 200 when the caller's one is "
                f"replaced (its owner and `created_at` stay). A {name} with this {key} that "
                "the caller may not write is never overwritten: 403 when they can see it, "
                "else 409. With `If-Match`, only that version of an existing row is replaced; "
                "with `If-None-Match: *`, only a new row is created (412 otherwise)."
            ),
            response_model=routes.representation.item_model,
            responses={
                201: {"description": "Created"},
                **problem_responses(400, 401, 403, 409, 412, 422),
            },
        )
        async def upsert_one(
            request: Request,
            value: Value,
            data: Annotated[UpsertBody, Body()],  # type: ignore[valid-type]  # a runtime schema
            viewer: Writer,
            if_match: IfMatch = None,
            if_none_match: IfNoneMatchStar = None,
        ) -> Response:
            routes.repository.access.check_may_create(viewer)
            body: BaseModel = data
            values = body.model_dump()
            if values.get(key) not in (None, value):
                message = f"{key} differs from the path's"
                raise Unprocessable(
                    message, errors=[{"loc": ["body", key], "msg": message, "type": "mismatch"}]
                )
            values[key] = value
            create_only = if_none_match is not None and if_none_match.strip() == "*"
            async with database(request).transaction() as connection:
                item, etag, created = await self.upserts.upsert(
                    connection,
                    values,
                    viewer,
                    parse_if_match(if_match),
                    create_only,
                    routes.expansion(request),
                )
            code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
            return json_response(routes.representation.item(item), code, etag)

    def add_many(self, bulk: "BulkRoutes") -> None:
        routes, key = self.routes, self.key
        Writer: TypeAlias = Annotated[Viewer, Depends(routes.write_viewer)]
        Create = routes.resource.create
        plural = routes.resource.plural
        entry = create_model(
            f"{routes.resource.name}Upserted",
            etag=(str, ...),
            created=(bool, Field(description="Created (else replaced)")),
            data=(routes.representation.item_model, ...),
        )
        result = create_model(f"{routes.resource.name}UpsertResult", items=(list[entry], ...))

        @routes.router.put(
            "/batch",
            operation_id=f"{plural}-upsert-many",
            summary=f"Create or replace several {plural} by their {key}",
            description=(
                f"1 to BULK_MAX_ITEMS {plural}, each created or replaced by its `{key}` as "
                f"`PUT /{plural}/by-{key.replace('_', '-')}/{{value}}` does, in one "
                "transaction: all, or none (a refused item is named by its index)."
            ),
            response_model=result,
            responses=problem_responses(400, 401, 403, 409, 413, 422),
        )
        async def upsert_many(
            request: Request,
            items: Annotated[list[Create], Body(min_length=1)],  # type: ignore[valid-type]  # a runtime schema
            viewer: Writer,
        ) -> Response:
            bulk.check_count(request, items)
            routes.repository.access.check_may_create(viewer)
            bodies: list[BaseModel] = items
            rows = [body.model_dump() for body in bodies]
            self.check_unique_keys(rows)
            async with (
                bounded(request.app.state.settings),
                database(request).transaction() as connection,
            ):
                written = await self.upserts.upsert_many(
                    connection, rows, viewer, routes.expansion(request)
                )
            answer = [
                {"etag": etag, "created": created, "data": item} for item, etag, created in written
            ]
            return bulk.answer({"items": answer})

    def check_unique_keys(self, rows: list[dict[str, Any]]) -> None:
        seen: dict[Any, int] = {}
        errors = []
        for index, row in enumerate(rows):
            if row[self.key] in seen:
                message = f"{self.key} {row[self.key]!r} is also item {seen[row[self.key]]}"
                errors.append(
                    {"loc": ["body", index, self.key], "msg": message, "type": "duplicate"}
                )
            seen.setdefault(row[self.key], index)
        if errors:
            raise Unprocessable(f"Each {self.key} may appear once", errors=errors)
