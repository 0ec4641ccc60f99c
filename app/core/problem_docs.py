"""How `/docs` shows problems: the `Problem` schema, and an example of each status's own
problem type on every operation that can answer it (app/core/errors.py makes them)."""

from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, Field

from app.core.errors import PROBLEM_MEDIA_TYPE, VALIDATION_DETAIL, problem_body

# The `detail` of each status's example in `/docs`: what the API answers most often with it.
EXAMPLE_DETAILS = {
    400: "Malformed entity tag in a conditional header",
    401: "Not authenticated",
    403: "You may not change this post",
    404: "Post 42 not found",
    409: "A record with this value already exists",
    410: "The sync token is older than 30 days (SYNC_RETENTION_DAYS): read the feed again",
    412: "Post 42 has changed since the given If-Match tag",
    413: "The request body is larger than 1048576 bytes",
    422: VALIDATION_DETAIL,
    429: "Too many failed logins; try again later",
    503: "The database is not reachable; retry shortly",
}
EXAMPLE_ERRORS = [{"loc": ["body", "title"], "msg": "Field required", "type": "missing"}]


class ErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """The body of every error response."""

    type: str = Field(examples=["/problems/not-found"])
    title: str = Field(examples=["Not Found"])
    status: int = Field(examples=[404])
    detail: str = Field(examples=[EXAMPLE_DETAILS[404]])
    errors: list[ErrorItem] | None = Field(default=None, examples=[EXAMPLE_ERRORS])
    errors_total: int | None = Field(
        default=None, description="How many errors there were, when `errors` lists only 100"
    )
    message: str | None = Field(
        default=None, description="On `/api/compat` routes: what the frontend shows the user"
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting errors with the problem schema and an example
    of each status's own problem type."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {
                PROBLEM_MEDIA_TYPE: {
                    "schema": {"$ref": "#/components/schemas/Problem"},
                    "example": problem_body(
                        status,
                        EXAMPLE_DETAILS.get(status, HTTPStatus(status).phrase),
                        errors=EXAMPLE_ERRORS if status == 422 else None,
                    ),
                }
            },
        }
        for status in statuses
    }


# Any operation with a request body: one that cannot be parsed (not UTF-8, a broken form) is
# 400 from FastAPI, and one over MAX_BODY_BYTES is 413 from BodySizeLimitMiddleware.
BODY_ERRORS = (400, 413)


def add_problem_schemas(openapi: dict[str, Any]) -> dict[str, Any]:
    """Register `Problem` (referenced by `problem_responses`) in the OpenAPI components.

    Also documents the errors that come from reading a request body rather than from a route,
    and lists every operation's responses in status order.
    """
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(schema.pop("$defs", {}))
    schemas["Problem"] = schema
    for path_item in openapi.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            if "requestBody" in operation:
                for status, response in problem_responses(*BODY_ERRORS).items():
                    responses.setdefault(str(status), response)
            operation["responses"] = dict(sorted(responses.items()))
    return openapi
