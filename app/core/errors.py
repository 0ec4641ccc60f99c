"""Problem details (RFC 9457) for every error, from every layer, mapped in one place."""

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Scope

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "/problems/"

# The stable problem type slug for errors raised without one (framework errors).
STATUS_SLUGS = {
    400: "bad-request",
    401: "not-authenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    410: "sync-expired",  # the only 410: a sync token past SYNC_RETENTION_DAYS
    412: "precondition-failed",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    429: "too-many-requests",
    500: "internal-error",
    503: "service-unavailable",
}

VALIDATION_DETAIL = "The request is not valid"

logger = logging.getLogger(__name__)


class ProblemError(Exception):
    """A domain error: raised below the route layer, rendered as problem+json here.

    A subclass names its status and problem type once: `class Gone(ProblemError, status=410,
    slug="gone")`.
    """

    status = 400
    slug = "bad-request"

    def __init_subclass__(cls, status: int | None = None, slug: str | None = None) -> None:
        super().__init_subclass__()
        cls.status = status or cls.status
        cls.slug = slug or cls.slug

    def __init__(
        self,
        detail: str,
        *,
        slug: str | None = None,
        errors: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.slug = slug or self.slug
        self.errors = errors
        self.headers = headers


class BadRequest(ProblemError, status=400, slug="bad-request"):
    """The request cannot be read as sent (a malformed header, a wrong current password)."""


class NotAuthenticated(ProblemError, status=401, slug="not-authenticated"):
    """No valid credentials; answered with `WWW-Authenticate: Bearer`."""

    def __init__(self, detail: str = "Not authenticated", **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kwargs)


class Forbidden(ProblemError, status=403, slug="forbidden"):
    """The caller may see the record, or call the route, but not do this."""


class NotFound(ProblemError, status=404, slug="not-found"):
    """No such record, or one the caller may not see: the same answer for both."""


class Conflict(ProblemError, status=409, slug="conflict"):
    """The request contradicts the stored data (a taken email, the last superuser)."""


class PreconditionFailed(ProblemError, status=412, slug="precondition-failed"):
    """The record changed since the `If-Match` tag the client sent."""


class Unprocessable(ProblemError, status=422, slug="validation-error"):
    """Well-formed, but not valid: the `errors` list names each field."""


class ServiceUnavailable(ProblemError, status=503, slug="service-unavailable"):
    """The database cannot answer now; `Retry-After` says when to try again."""


def field_error(field: str, msg: str, type_: str) -> dict[str, Any]:
    return {"loc": ["body", field], "msg": msg, "type": type_}


def problem_body(
    status: int,
    detail: str,
    slug: str | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + (slug or STATUS_SLUGS.get(status, "error")),
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = list(errors)
    return body


MAX_LISTED_ERRORS = 100  # then `errors_total` says how many there were


def problem_response(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,  # extension members (RFC 9457)
) -> JSONResponse:
    body = problem_body(status, detail, slug, errors) | dict(extra or {})
    return JSONResponse(body, status, headers=dict(headers or {}), media_type=PROBLEM_MEDIA_TYPE)


def _validation_items(error: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(item["loc"]), "msg": item["msg"], "type": item["type"]}
        for item in error.errors()
    ]


def error_response(
    error: ProblemError | RequestValidationError, extra: Mapping[str, Any] | None = None
) -> JSONResponse:
    """The problem document of a domain or validation error."""
    if isinstance(error, RequestValidationError):
        items = _validation_items(error)
        if len(items) > MAX_LISTED_ERRORS:  # a bulk body can have thousands
            extra = {**(extra or {}), "errors_total": len(items)}
        return problem_response(
            422,
            VALIDATION_DETAIL,
            slug="validation-error",
            errors=items[:MAX_LISTED_ERRORS],
            extra=extra,
        )
    return problem_response(
        error.status,
        error.detail,
        slug=error.slug,
        errors=error.errors,
        headers=error.headers,
        extra=extra,
    )


async def _on_problem(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return error_response(exc)


def _allowed_methods(request: Request) -> list[str]:
    """Every method the path answers to: Starlette's `Allow` names only the first route's."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        if route.methods and route.matches(request.scope)[0] is Match.PARTIAL:
            methods |= route.methods
    return sorted(methods)


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    headers = dict(exc.headers or {})
    if exc.status_code == 405 and (methods := _allowed_methods(request)):
        headers["Allow"] = ", ".join(methods)
    return problem_response(exc.status_code, detail, headers=headers)


async def _on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(exc)


def unhandled_error_response(scope: Scope, exc: BaseException) -> JSONResponse:
    """500 with a generic detail; the traceback goes to the server log only."""
    logger.error("Unhandled error on %s %s", scope["method"], scope["path"], exc_info=exc)
    return problem_response(500, "An unexpected error occurred")


async def _on_unhandled(request: Request, exc: Exception) -> JSONResponse:
    return unhandled_error_response(request.scope, exc)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(Exception, _on_unhandled)
