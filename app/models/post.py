from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import ConfigDict
from sqlalchemy import Index, Text, delete, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, SQLModel, col

from app.core.db import UTCDateTime, utcnow
from app.core.errors import NotFound, problem_responses
from app.core.sql import Connection
from app.crud.repository import Repository
from app.crud.resource import Embed, Resource, Viewer, ViewerDeps, register
from app.crud.router import ItemId
from app.crud.table import Versioned
from app.models.user import User


class PostBase(SQLModel):
    title: str = Field(min_length=1, max_length=200)
    content: str = Field(default="", max_length=10_000)
    published: bool = True


class Post(PostBase, Versioned, table=True):
    __tablename__ = "posts"
    __table_args__ = (
        Index("ix_posts_created_at_id", "created_at", "id"),
        Index("ix_posts_votes_id", "votes", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    content: str = Field(default="", sa_type=Text)
    owner_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    # Kept by database triggers on post_votes (see the migration), so cascades stay exact.
    votes: int = Field(default=0)


class PostVote(SQLModel, table=True):
    """One vote per (post, user); there is no /votes resource, only routes on posts."""

    __tablename__ = "post_votes"

    post_id: int = Field(foreign_key="posts.id", ondelete="CASCADE", primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", primary_key=True, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PostCreate(PostBase):
    model_config = ConfigDict(extra="forbid")


class PostUpdate(SQLModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=200)
    content: str | None = Field(default=None, max_length=10_000)
    published: bool | None = None


class PostOwner(SQLModel):
    id: int
    full_name: str | None


class PostPublic(PostBase):
    id: int
    owner_id: int
    owner: PostOwner
    votes: int
    created_at: datetime
    updated_at: datetime


def visible_posts(table: type[Post], viewer: Viewer) -> object:
    """Unpublished posts are for their owner (and superusers) only."""
    if viewer.id is None:
        return table.published
    return or_(table.published, table.owner_id == viewer.id)


def insert_ignoring_duplicates(connection: Connection) -> Any:
    dialect = postgresql if connection.dialect_name == "postgresql" else sqlite
    return dialect.insert(PostVote).on_conflict_do_nothing()


def vote_routes(router: APIRouter, resource: Resource, viewers: ViewerDeps) -> None:
    """`PUT`/`DELETE /posts/{id}/vote`: the whole votes API, as extra routes on posts."""
    repository = Repository(resource)
    Voter = Annotated[Viewer, Depends(viewers.required)]

    @router.put(
        "/{item_id}/vote",
        operation_id="posts-vote",
        status_code=status.HTTP_204_NO_CONTENT,
        response_class=Response,
        responses=problem_responses(401, 404, 422),
    )
    async def vote(request: Request, item_id: ItemId, viewer: Voter) -> None:
        """Add the caller's vote; voting twice changes nothing."""
        async with request.app.state.db.transaction() as connection:
            await repository.require_visible(connection, item_id, viewer)
            statement = insert_ignoring_duplicates(connection)
            await connection.execute(statement.values(post_id=item_id, user_id=viewer.id))

    @router.delete(
        "/{item_id}/vote",
        operation_id="posts-unvote",
        status_code=status.HTTP_204_NO_CONTENT,
        response_class=Response,
        responses=problem_responses(401, 404, 422),
    )
    async def unvote(request: Request, item_id: ItemId, viewer: Voter) -> None:
        """Remove the caller's vote; 404 when there is none."""
        async with request.app.state.db.transaction() as connection:
            await repository.require_visible(connection, item_id, viewer)
            removed = await connection.row(
                delete(PostVote)
                .where(col(PostVote.post_id) == item_id, col(PostVote.user_id) == viewer.id)
                .returning(col(PostVote.post_id))
            )
            if removed is None:
                raise NotFound(f"You have not voted for post {item_id}")


posts = register(
    Resource(
        plural="posts",
        table=Post,
        create=PostCreate,
        update=PostUpdate,
        public=PostPublic,
        owner_field="owner_id",
        search_fields=("title", "content"),
        visibility=visible_posts,
        embeds=(Embed("owner", User, "owner_id", ("id", "full_name")),),
        default_sort="-created_at",
        count_limit=10_000,
        extra_routes=(vote_routes,),
    )
)
