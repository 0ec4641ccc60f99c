from fastapi import APIRouter

from app.api import auth, users
from app.api.resources import resource_routers

api_router = APIRouter(prefix="/api/v1")
api_router.include_router(auth.router)
api_router.include_router(users.router)
for router in resource_routers():
    api_router.include_router(router)
