"""Probes for load balancers and orchestrators; no token, not under `/api/v1`."""

from fastapi import APIRouter, Request
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from app.api.deps import operation
from app.core.errors import ServiceUnavailable
from app.core.problem_docs import problem_responses

router = APIRouter(prefix="/health", tags=["health"])


@router.get("", **operation("health-live", "Liveness: the process answers"))
async def live() -> dict[str, str]:
    """The process answers; the database is not consulted."""
    return {"status": "ok"}


@router.get(
    "/ready",
    **operation("health-ready", "Readiness: the database answers"),
    responses=problem_responses(503),
)
async def ready(request: Request) -> dict[str, str]:
    """The database answers `SELECT 1`."""
    try:
        async with request.app.state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except (OperationalError, DBAPIError, OSError) as error:
        raise ServiceUnavailable(
            "The database is not reachable", headers={"Retry-After": "5"}
        ) from error
    return {"status": "ok"}
