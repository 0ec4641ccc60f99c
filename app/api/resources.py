"""Mounts every resource declared in app/models."""

from fastapi import APIRouter, Request
from sqlalchemy import bindparam, select
from sqlmodel import col

import app.models  # noqa: F401  (declares the resources)
from app.api.deps import TokenDep, invalid_token, token_user_id
from app.core.errors import NotAuthenticated
from app.crud.resource import Viewer, ViewerDeps, registry
from app.crud.router import build_routers
from app.models.user import User

ANONYMOUS = Viewer(id=None)
# Built once: its bind parameter takes each request's user id.
CALLER = select(User.is_superuser).where(col(User.id) == bindparam("user_id"), col(User.is_active))


async def optional_viewer(request: Request, token: TokenDep) -> Viewer:
    """The caller as the generic layer sees it: one autocommit query, no ORM session."""
    if token is None:
        return ANONYMOUS
    user_id = token_user_id(request, token, request.app.state.settings)
    async with request.app.state.db.connect() as connection:
        caller = await connection.row(CALLER, {"user_id": user_id})
    if caller is None:
        raise invalid_token()
    return Viewer(id=user_id, is_superuser=caller["is_superuser"])


async def required_viewer(request: Request, token: TokenDep) -> Viewer:
    viewer = await optional_viewer(request, token)
    if viewer.id is None:
        raise NotAuthenticated()
    return viewer


VIEWERS = ViewerDeps(optional=optional_viewer, required=required_viewer)


def resource_routers() -> list[APIRouter]:
    return [router for resource in registry for router in build_routers(resource, VIEWERS)]
