import inspect
from typing import Any

from fastapi import APIRouter, FastAPI

from app.api import auth, health, users, votes
from app.api.resources import resource_routers
from app.core.errors import problem_responses
from app.crud.docs import resource_tag
from app.crud.resource import registry

API_PREFIX = "/api/v1"


def include_api(app: FastAPI) -> None:
    """Mount every API router under `/api/v1`.

    Each is included into the app itself, not into one `/api/v1` router, and the generated
    resources (most of the traffic) first: FastAPI finds a request's route by asking each
    included router in turn, at some 10 µs per router passed and per level of nesting.
    """
    routers: list[APIRouter] = [*resource_routers(), votes.router, auth.router, users.router]
    for router in routers:
        # Every operation below needs the database: while it is unreachable, or a statement
        # runs past DB_STATEMENT_TIMEOUT_MS, the answer is 503 with Retry-After
        # (app/core/db_errors.py).
        app.include_router(router, prefix=API_PREFIX, responses=problem_responses(503))


def openapi_tags() -> list[dict[str, Any]]:
    """The tags `/docs` groups operations by, in its order: the resources, then the accounts,
    health last."""
    accounts = [
        {"name": module.router.tags[0], "description": inspect.cleandoc(module.__doc__ or "")}
        for module in (auth, users, health)
    ]
    return [*(resource_tag(resource) for resource in registry), *accounts]
