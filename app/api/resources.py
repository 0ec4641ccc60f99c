"""Mounts every resource declared in app/models."""

from fastapi import APIRouter

import app.models  # noqa: F401  (declares the resources)
from app.api.deps import CurrentUser, OptionalUser
from app.crud.resource import Viewer, ViewerDeps, registry
from app.crud.router import build_routers


async def optional_viewer(user: OptionalUser) -> Viewer:
    if user is None:
        return Viewer(id=None)
    return Viewer(id=user.id, is_superuser=user.is_superuser)


async def required_viewer(user: CurrentUser) -> Viewer:
    return Viewer(id=user.id, is_superuser=user.is_superuser)


VIEWERS = ViewerDeps(optional=optional_viewer, required=required_viewer)


def resource_routers() -> list[APIRouter]:
    return [router for resource in registry for router in build_routers(resource, VIEWERS)]
