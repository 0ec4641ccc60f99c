from datetime import datetime
from typing import Annotated

from pydantic import Strict
from sqlmodel import Field, Relationship, SQLModel

from app.crud.resource import Expand, Parent, Resource, register
from app.crud.table import Versioned, input_config
from app.models.post import Post, posts
from app.models.user import User, UserProfile


class CommentBase(SQLModel):
    body: str = Field(
        min_length=1,
        max_length=2_000,
        schema_extra={"examples": ["Congratulations on the launch!"]},
    )


class Comment(CommentBase, Versioned, table=True):
    """Comments on posts: a short text body by its author, on one post.

    A comment is visible when its post is; `GET /posts/{parent_id}/comments` lists the
    comments of one post.
    """

    __tablename__ = "comments"

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="posts.id", ondelete="CASCADE", index=True)
    author_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)

    post: Post = Relationship(back_populates="comments")
    author: User = Relationship()


class CommentCreate(CommentBase):
    model_config = input_config()

    post_id: Annotated[int, Strict()] = Field(ge=1)  # JSON `true` is not post 1


class CommentUpdate(SQLModel):
    model_config = input_config()

    body: str | None = Field(
        default=None,
        min_length=1,
        max_length=2_000,
        schema_extra={"examples": ["Congratulations on the launch!"]},
    )


class CommentPublic(CommentBase):
    id: int
    post_id: int
    author_id: int
    created_at: datetime
    updated_at: datetime


comments = register(
    Resource(
        table=Comment,
        create=CommentCreate,
        update=CommentUpdate,
        public=CommentPublic,
        owner_field="author_id",
        filter_fields=("post_id", "author_id", "created_at"),
        parents=(Parent("post_id", posts, nested_list=True, inherits_visibility=True),),
        expand=(Expand("post"), Expand("author", UserProfile)),
    )
)
