"""Generated responses are exactly what the Public schema would dump, without validating rows.

`app/crud/representation.py` writes plain projections straight to JSON; these tests hold
that JSON to the model's own `model_dump(mode="json")`, field for field and in order.
"""

import dataclasses
from typing import Any

from httpx import AsyncClient
from pydantic import computed_field

from app.crud.relations import resolve
from app.crud.representation import Representation, is_plain_projection
from app.crud.resource import Resource, registry
from app.models.post import PostPublic
from tests.crud.conftest import Blog
from tests.crud.formats import PAGE_FIELDS
from tests.factories import UserFactory


def resource(plural: str) -> Resource:
    return next(resource for resource in registry if resource.plural == plural)


def assert_dumped_by_the_model(public: Any, item: dict[str, Any]) -> None:
    expected = public.model_validate(item).model_dump(mode="json")
    assert item == expected
    assert list(item) == list(expected)


def test_the_demo_resources_are_plain_projections() -> None:
    assert all(is_plain_projection(resource) for resource in registry)


async def test_items_and_pages_match_the_public_schemas_dump(
    client: AsyncClient, users: UserFactory, blog: Blog
) -> None:
    alice = await users.create()
    post = await blog.post(alice, content="x" * 50, published=False)
    comment = await blog.comment(alice, post)
    for plural, created in (("posts", post), ("comments", comment)):
        public = resource(plural).public
        read = await client.get(f"/api/v1/{plural}/{created['id']}", headers=alice.headers)
        page = await client.get(f"/api/v1/{plural}", headers=alice.headers)
        assert read.status_code == page.status_code == 200
        assert read.json() == created
        assert [item["id"] for item in page.json()["items"]] == [created["id"]]
        for item in (created, read.json(), *page.json()["items"]):
            assert_dumped_by_the_model(public, item)
        assert list(page.json()) == PAGE_FIELDS


def test_a_schema_with_a_computed_field_is_validated_and_dumped_by_its_model() -> None:
    class PostWithSummary(PostPublic):
        @computed_field  # type: ignore[prop-decorator]
        @property
        def summary(self) -> str:
            return self.title[:3]

    posts = dataclasses.replace(resource("posts"), public=PostWithSummary)
    assert not is_plain_projection(posts)
    item = {
        "title": "Hello",
        "content": "",
        "published": True,
        "id": 1,
        "owner_id": 2,
        "owner": {"id": 2, "full_name": None},
        "votes": 0,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    }
    written = Representation(posts, resolve(posts)).item(item)
    assert written == PostWithSummary.model_validate(item).model_dump_json().encode()
    assert b'"summary":"Hel"' in written
