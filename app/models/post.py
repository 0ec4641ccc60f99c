from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, Index, Text, and_, or_
from sqlmodel import Field, Relationship, SQLModel, col

from app.core.db import UTCDateTime, utcnow
from app.crud.resource import Expand, Resource, Viewer, register
from app.crud.table import Versioned, input_config
from app.models.user import User, UserProfile

if TYPE_CHECKING:
    from app.models.comment import Comment


class PostBase(SQLModel):
    title: str = Field(
        min_length=1, max_length=200, schema_extra={"examples": ["Shipping our first release"]}
    )
    content: str = Field(
        default="",
        max_length=10_000,
        schema_extra={
            "examples": ["Two weeks of beta feedback, and what we changed because of it."]
        },
    )
    published: bool = True


class Post(PostBase, Versioned, table=True):
    """Posts written by users: a title and text content, published by default.

    Anyone may read published posts; an unpublished one is a draft only its owner (and
    superusers) can see. Each post embeds its `owner` (id and name) and counts its `votes`:
    `PUT`/`DELETE /posts/{item_id}/vote` add or remove the caller's vote.
    """

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

    owner: User = Relationship()
    comments: list["Comment"] = Relationship(back_populates="post")


class PostVote(SQLModel, table=True):
    """One vote per (post, user); there is no /votes resource, only routes on posts
    (app/api/votes.py)."""

    __tablename__ = "post_votes"

    post_id: int = Field(foreign_key="posts.id", ondelete="CASCADE", primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", primary_key=True, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PostCreate(PostBase):
    model_config = input_config()


class PostUpdate(SQLModel):
    model_config = input_config()

    title: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        schema_extra={"examples": ["Shipping our first release"]},
    )
    content: str | None = Field(
        default=None,
        max_length=10_000,
        schema_extra={
            "examples": ["Two weeks of beta feedback, and what we changed because of it."]
        },
    )
    published: bool | None = None


class PostPublic(PostBase):
    id: int
    owner_id: int
    owner: UserProfile
    votes: int
    created_at: datetime
    updated_at: datetime


def visible_posts(table: type[Post], viewer: Viewer) -> ColumnElement[bool]:
    """Unpublished posts are for their owner (and superusers) only."""
    published = col(table.published)
    if viewer.id is None:
        return and_(published)  # the column itself, typed as a condition
    return or_(published, col(table.owner_id) == viewer.id)


posts = register(
    Resource(
        table=Post,
        create=PostCreate,
        update=PostUpdate,
        public=PostPublic,
        owner_field="owner_id",
        search_fields=("title", "content"),
        sort_fields=("created_at", "votes", "id", "owner_id"),
        visibility=visible_posts,
        expand=(Expand("owner", UserProfile, default=True), Expand("comments")),
        default_sort="-created_at",
        count_limit=10_000,
    )
)
