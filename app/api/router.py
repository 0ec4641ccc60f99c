from fastapi import APIRouter

from app.api import auth, users
from app.api.resources import resource_routers
from app.core.errors import problem_responses

# Every operation below needs the database: while it is unreachable, or a statement runs past
# DB_STATEMENT_TIMEOUT_MS, the answer is 503 with Retry-After (app/core/db_errors.py).
api_router = APIRouter(prefix="/api/v1", responses=problem_responses(503))
api_router.include_router(auth.router)
api_router.include_router(users.router)
for router in resource_routers():
    api_router.include_router(router)
