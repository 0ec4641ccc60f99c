"""Expansions are resolved from the table model's SQLModel `Relationship()`s."""

from dataclasses import replace

import pytest
from sqlmodel import SQLModel

from app.crud.relations import default_expansions, resolve, to_one
from app.crud.resource import Expand
from app.models.comment import comments
from app.models.post import posts
from app.models.user import UserProfile, UserPublic


class PostTitle(SQLModel):
    id: int
    title: str


def test_the_post_owner_comes_from_the_relationship() -> None:
    [owner] = default_expansions(posts)
    assert (owner.name, owner.sa_table.name, owner.local_key) == ("owner", "users", "owner_id")
    assert owner.columns == ("id", "full_name")
    author = to_one(comments, Expand("author", UserProfile))
    assert (author.sa_table.name, author.local_key) == ("users", "author_id")
    post = to_one(comments, Expand("post", PostTitle))
    assert (post.sa_table.name, post.local_key) == ("posts", "post_id")


class Hidden(SQLModel):
    id: int
    hashed: str


@pytest.mark.parametrize(
    ("expand", "message"),
    [
        (Expand("writer", UserProfile), "'writer' is not a Relationship\\(\\) of Post"),
        (Expand("comments", UserProfile), "'comments' is not a to-one relation"),
        (Expand("owner", Hidden), r"Hidden shows \['hashed'\], not columns"),
    ],
)
def test_declarations_that_do_not_fit_are_refused(expand: Expand, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        default_expansions(replace(posts, expand=(replace(expand, default=True),)))


def test_the_users_profile_shows_no_email() -> None:
    assert "email" in UserPublic.model_fields
    assert set(UserProfile.model_fields) == {"id", "full_name"}


@pytest.mark.parametrize(
    ("expand", "message"),
    [
        (Expand("comments", max_items=0), "max_items must be at least 1"),
        (Expand("comments", default=True), "never a default expansion"),
    ],
)
def test_to_many_declarations_that_do_not_fit_are_refused(expand: Expand, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        resolve(replace(posts, expand=(expand,)))


def test_the_declared_relations_and_what_expand_may_name() -> None:
    relations = resolve(posts)
    assert relations.defaults == ("owner",)
    assert list(relations.optional) == []
    assert relations.names == ("owner", "comments", "comments.author")  # not comments.post
    assert relations.fields == ("owner.full_name",)
    assert list(resolve(comments).optional) == ["post", "author"]
