import inspect
from typing import Any

from fastapi import APIRouter, FastAPI

from app.api import auth, health, users, votes
from app.api.resources import generated_routes
from app.core.problem_docs import problem_responses
from app.crud.dialects import DIALECTS, DialectRoutes
from app.crud.docs import resource_tag
from app.crud.resource import registry

API_PREFIX = "/api/v1"
COMPAT_PREFIX = "/api/compat"


def include_api(app: FastAPI) -> None:
    """Mount every API router under `/api/v1`, and the resources' frontend dialects under
    `/api/compat/<dialect>` (app/crud/dialects).

    Each is included into the app itself, not into one `/api/v1` router, and the generated
    resources (most of the traffic) first, then their dialects: FastAPI finds a request's
    route by asking each included router in turn, at some 10 µs per router passed and per
    level of nesting.
    """
    generated = generated_routes()
    mounts: list[tuple[str, APIRouter]] = [
        (API_PREFIX, router) for routes in generated for router in routes.build()
    ]
    for dialect in DIALECTS:
        prefix = f"{COMPAT_PREFIX}/{dialect.name}"
        mounts += [(prefix, DialectRoutes(routes, dialect).build()) for routes in generated]
    mounts += [(API_PREFIX, module.router) for module in (votes, auth, users)]
    # Every operation below needs the database: while it is unreachable, or a statement
    # runs past DB_STATEMENT_TIMEOUT_MS, the answer is 503 with Retry-After
    # (app/core/db_errors.py).
    for prefix, router in mounts:
        app.include_router(router, prefix=prefix, responses=problem_responses(503))


def openapi_tags() -> list[dict[str, Any]]:
    """The tags `/docs` groups operations by, in its order: the resources and their frontend
    dialects, then the accounts, health last."""
    accounts = [
        {"name": module.router.tags[0], "description": inspect.cleandoc(module.__doc__ or "")}
        for module in (auth, users, health)
    ]
    dialects = [{"name": dialect.name, "description": dialect.description} for dialect in DIALECTS]
    return [*(resource_tag(resource) for resource in registry), *dialects, *accounts]
