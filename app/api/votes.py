"""`PUT`/`DELETE /posts/{id}/vote`: the whole votes API, as two routes beside the posts."""

from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request, Response, status
from sqlalchemy import BindParameter, Insert, bindparam, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col

from app.api.resources import VIEWERS
from app.core.connections import Connection
from app.core.database import Database
from app.core.errors import NotFound
from app.core.problem_docs import problem_responses
from app.crud.repository import Repository
from app.crud.resource import Viewer
from app.crud.route_params import ItemId
from app.models.post import PostVote, posts

router = APIRouter(prefix="/posts", tags=["posts"])
Voter = Annotated[Viewer, Depends(VIEWERS.required)]
repository = Repository(posts)
Endpoint = TypeVar("Endpoint", bound=Callable[..., Coroutine[Any, Any, None]])

VOTE: dict[str, BindParameter[Any]] = {
    "post_id": bindparam("post_id"),
    "user_id": bindparam("user_id"),
}
INSERT_VOTE: dict[str, Insert] = {
    "postgresql": postgresql.insert(PostVote).values(VOTE).on_conflict_do_nothing(),
    "sqlite": sqlite.insert(PostVote).values(VOTE).on_conflict_do_nothing(),
}
DELETE_VOTE = (
    delete(PostVote)
    .where(
        col(PostVote.post_id) == bindparam("post_id"),
        col(PostVote.user_id) == bindparam("user_id"),
    )
    .returning(col(PostVote.post_id))
)


def vote_route(method: str, operation_id: str, summary: str) -> Callable[[Endpoint], Endpoint]:
    return router.api_route(
        "/{item_id}/vote",
        methods=[method],
        operation_id=operation_id,
        summary=summary,
        status_code=status.HTTP_204_NO_CONTENT,
        response_class=Response,
        responses=problem_responses(401, 404, 422),
    )


@asynccontextmanager
async def visible_post(request: Request, item_id: int, viewer: Viewer) -> AsyncIterator[Connection]:
    """A transaction in which the post exists and is visible to the voter (else 404)."""
    db: Database = request.app.state.db
    async with db.transaction() as connection:
        await repository.require_visible(connection, item_id, viewer)
        yield connection


@vote_route("PUT", "posts-vote", "Vote for a post")
async def vote(request: Request, item_id: ItemId, viewer: Voter) -> None:
    """Add the caller's vote to a post the caller can see (else 404); voting twice changes
    nothing."""
    async with visible_post(request, item_id, viewer) as connection:
        statement = INSERT_VOTE[connection.dialect_name]
        await connection.execute(statement, {"post_id": item_id, "user_id": viewer.id})


@vote_route("DELETE", "posts-unvote", "Withdraw a vote for a post")
async def unvote(request: Request, item_id: ItemId, viewer: Voter) -> None:
    """Remove the caller's vote; 404 when there is none."""
    async with visible_post(request, item_id, viewer) as connection:
        values = {"post_id": item_id, "user_id": viewer.id}
        if await connection.row(DELETE_VOTE, values) is None:
            raise NotFound(f"You have not voted for post {item_id}")
