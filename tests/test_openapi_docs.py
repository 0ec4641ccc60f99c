"""`/docs` reads like a product: summaries, descriptions, tags, the API description."""

import ast
import inspect
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from pydantic import ValidationError

from app.core.config import Settings, get_settings
from app.core.errors import STATUS_SLUGS
from app.crud.resource import registry
from app.main import create_app
from app.models.comment import comments
from app.models.post import posts
from tests.test_openapi_crud import operations

APP = Path(__file__).resolve().parents[1] / "app"
BULK = ("create", "update", "delete")
# Before issue 21: summaries and tags changed, the operationIds (client method names) did not.
OPERATION_IDS = {
    "auth-login",
    "auth-logout",
    "auth-logout-all",
    "auth-refresh",
    "auth-register",
    "comments-create",
    "comments-delete",
    "comments-get",
    "comments-list",
    "comments-list-by-post",
    "comments-replace",
    "comments-update",
    "health-live",
    "health-ready",
    "posts-create",
    "posts-delete",
    "posts-get",
    "posts-list",
    "posts-replace",
    "posts-unvote",
    "posts-update",
    "posts-vote",
    "users-change-password",
    "users-delete",
    "users-list",
    "users-read",
    "users-read-me",
    "users-update",
    "users-update-me",
}
# Problem types whose slug is passed positionally or as an `errors` type, not as `slug=`.
POSITIONAL_SLUGS = {"too-many-login-attempts", "unique-violation", "null-not-allowed"}
GENERIC_WORDS = ("Item", "Items", "Children")


def declared_slugs() -> set[str]:
    """Every problem type the app names with `slug=...` (calls and class statements)."""
    slugs = set(STATUS_SLUGS.values())
    for path in APP.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            keywords = node.keywords if isinstance(node, ast.Call | ast.ClassDef) else []
            for keyword in keywords:
                if keyword.arg == "slug" and isinstance(keyword.value, ast.Constant):
                    slugs.add(keyword.value.value)
    return slugs | POSITIONAL_SLUGS


def test_operation_ids_are_unchanged(spec: dict[str, Any]) -> None:
    """Besides the frontend dialects' operations (issue 15), under their own tags, the bulk
    writes (issue 16) and the change feeds with their stream ticket (issue 17)."""
    ids = {operation["operationId"] for _, _, operation in operations(spec)}
    dialects = {id_ for id_ in ids if id_.startswith(("json-server-", "simple-rest-"))}
    bulk = {f"{plural}-{action}-many" for plural in ("posts", "comments") for action in BULK}
    assert bulk <= ids
    sync = {
        f"{plural}-{feed}" for plural in ("posts", "comments") for feed in ("changes", "events")
    }
    sync.add("auth-stream-ticket")
    assert sync <= ids
    tags = {id_ for id_ in ids if id_.startswith("tags-")}  # a resource added since
    assert ids - dialects - bulk - sync - tags == OPERATION_IDS
    for dialect in ("json-server", "simple-rest"):
        for resource in ("posts", "comments"):
            actions = {"list", "get", "create", "update", "replace", "delete"}
            assert {f"{dialect}-{resource}-{action}" for action in actions} <= dialects


def test_every_operation_has_a_specific_summary_and_a_description(spec: dict[str, Any]) -> None:
    summaries = []
    for method, path, operation in operations(spec):
        summary = operation.get("summary", "")
        where = (method, path, summary)
        assert summary, where
        assert not any(word in summary.split() for word in GENERIC_WORDS), where
        assert "-" not in summary.split()[0], where  # FastAPI's default from a route name
        assert operation.get("description", "").strip(), where
        summaries.append(summary)
    assert len(summaries) == len(set(summaries))


def test_routes_set_their_summary_explicitly(spec: dict[str, Any]) -> None:
    """Not FastAPI's title-cased function name ("List Items", "Read Me")."""
    routes = [
        route
        for route in iter_route_contexts(create_app().routes)
        if getattr(route, "include_in_schema", False)
    ]
    assert len(routes) == len(operations(spec))
    for route in routes:
        assert route.summary, route.path


@pytest.mark.parametrize("resource", [posts, comments], ids=lambda resource: resource.plural)
def test_generated_summaries_name_the_resource(spec: dict[str, Any], resource: Any) -> None:
    one = resource.singular
    expected = {
        ("get", ""): f"List {resource.plural}",
        ("post", ""): f"Create a {one}",
        ("get", "/{item_id}"): f"Get a {one}",
        ("patch", "/{item_id}"): f"Update a {one} (partial)",
        ("put", "/{item_id}"): f"Replace a {one}",
        ("delete", "/{item_id}"): f"Delete a {one}",
    }
    for (method, suffix), summary in expected.items():
        assert spec["paths"][f"/api/v1/{resource.plural}{suffix}"][method]["summary"] == summary
    nested = spec["paths"]["/api/v1/posts/{parent_id}/comments"]["get"]
    assert nested["summary"] == "List the comments of a post"


def test_generated_descriptions_give_access_and_conditional_headers(spec: dict[str, Any]) -> None:
    paths = spec["paths"]
    listing = paths["/api/v1/posts"]["get"]["description"]
    assert "Anyone may read posts" in listing
    assert "Writes: the owner or a superuser" in listing
    assert inspect.getdoc(posts.visibility) in listing  # the visibility rule's docstring
    assert "`cursor`" in listing and "X-Total-Count" in listing and "`q`" in listing
    assert "If-None-Match" in paths["/api/v1/posts/{item_id}"]["get"]["description"]
    assert "Idempotency-Key" in paths["/api/v1/posts"]["post"]["description"]
    for method in ("patch", "put", "delete"):
        description = paths["/api/v1/comments/{item_id}"][method]["description"]
        assert "If-Match" in description and "412" in description, method
        assert "Idempotency-Key" not in description
    comments = paths["/api/v1/comments"]["get"]["description"]
    assert "A comment is visible when its post is." in comments  # inherits_visibility=True
    assert "`post_id` must name a post" in paths["/api/v1/comments"]["post"]["description"]


def test_singulars_are_derived_or_declared() -> None:
    from app.crud import docs
    from app.crud.resource import singular_of

    assert [singular_of(plural) for plural in ("posts", "comments", "categories", "boxes")] == [
        "post",
        "comment",
        "category",
        "box",
    ]
    assert [singular_of(plural) for plural in ("addresses", "status", "news_items")] == [
        "address",
        "status",
        "news_item",
    ]
    assert posts.singular == "post" and comments.singular == "comment"
    articles = replace(posts, plural="articles", singular="entry")
    assert docs.summaries(articles)["get"] == "Get an entry"
    assert docs.summaries(articles)["list"] == "List articles"


def test_every_tag_is_described_resources_first_health_last(spec: dict[str, Any]) -> None:
    tags = {tag["name"]: tag.get("description", "") for tag in spec["tags"]}
    used = {tag for _, _, operation in operations(spec) for tag in operation["tags"]}
    assert used <= set(tags)
    assert all(description.strip() for description in tags.values()), tags
    names = list(tags)
    resources = [resource.plural for resource in registry if resource.plural in names]
    assert names[: len(resources)] == resources
    assert resources[:2] == ["posts", "comments"]
    assert {"auth", "users"} <= set(names[len(resources) :])
    assert names[-1] == "health"
    assert tags["posts"] == inspect.cleandoc(posts.table.__doc__ or "")
    assert tags["comments"] == inspect.cleandoc(comments.table.__doc__ or "")


def test_the_api_description_covers_auth_errors_lists_and_limits(spec: dict[str, Any]) -> None:
    info = spec["info"]
    assert info["title"] == "CRUD backend API"
    assert info["version"]
    text = info["description"]
    assert 20 <= len(text.splitlines()) <= 80
    for route in ("register", "login", "refresh", "logout", "logout-all"):
        assert f"/api/v1/auth/{route}" in text, route
    missing = {slug for slug in declared_slugs() if f"`{slug}`" not in text}
    assert not missing, f"problem types missing from info.description: {sorted(missing)}"
    settings = get_settings()
    for word in ("token family", "device_token", "X-Total-Count", "Link", "next_cursor", "sort"):
        assert word.lower() in text.lower(), word
    for header in ("ETag", "If-Match", "If-None-Match", "Idempotency-Key", "Retry-After"):
        assert f"`{header}`" in text, header
    assert f"at most {settings.MAX_OFFSET}" in text
    assert f"{settings.REGISTER_MAX_PER_WINDOW} per {settings.REGISTER_WINDOW_SECONDS}" in text
    assert f"{settings.LOGIN_MAX_FAILURES} per {settings.LOGIN_WINDOW_SECONDS}" in text
    assert "$" not in text  # every placeholder filled in


def test_contact_and_license_appear_only_when_set() -> None:
    unset = create_app(get_settings().model_copy()).openapi()["info"]
    assert "contact" not in unset and "license" not in unset
    settings = get_settings().model_copy(
        update={
            "API_CONTACT_EMAIL": "api@example.com",
            "API_CONTACT_URL": "https://example.com/support",
            "API_LICENSE_NAME": "MIT",
            "API_LICENSE_URL": "https://opensource.org/licenses/MIT",
        }
    )
    info = create_app(settings).openapi()["info"]
    assert info["contact"] == {"email": "api@example.com", "url": "https://example.com/support"}
    assert info["license"] == {"name": "MIT", "url": "https://opensource.org/licenses/MIT"}
    named = get_settings().model_copy(update={"API_LICENSE_NAME": "Proprietary"})
    assert create_app(named).openapi()["info"]["license"] == {"name": "Proprietary"}


def test_a_license_url_needs_a_name() -> None:
    with pytest.raises(ValidationError, match="API_LICENSE_URL needs API_LICENSE_NAME"):
        Settings(API_LICENSE_URL="https://opensource.org/licenses/MIT")


def example_body(spec: dict[str, Any], schema: str) -> dict[str, Any]:
    """A request body made of the first example of every property of a component schema."""
    properties = spec["components"]["schemas"][schema]["properties"]
    return {name: prop["examples"][0] for name, prop in properties.items()}


def test_every_resource_schema_property_has_an_example(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    names = [
        schema.__name__
        for resource in registry
        for schema in (resource.create, resource.update, resource.public)
    ]
    names += ["UserCreate", "UserPublic", "UserUpdateMe", "LoginTokens", "Problem"]
    for name in names:
        for field, prop in schemas[name]["properties"].items():
            if "$ref" not in json.dumps(prop):  # a reference: its schema has the examples
                assert prop.get("examples"), (name, field)
                assert repr(prop["examples"][0]) not in ("'string'", "0"), (name, field)
    # Declared ones where the demo models state them, derived from the type elsewhere.
    assert schemas["PostCreate"]["properties"]["title"]["examples"] == [
        "Shipping our first release"
    ]
    assert schemas["UserPublic"]["properties"]["email"]["examples"] == ["ada@example.com"]
    assert schemas["PostPublic"]["properties"]["created_at"]["examples"] == ["2026-03-14T09:26:53Z"]


async def test_the_examples_are_valid_requests(spec: dict[str, Any], client: Any) -> None:
    """What "Try it out" sends by default is accepted: sign up, log in, post, edit."""
    account = example_body(spec, "UserCreate")
    assert (await client.post("/api/v1/auth/register", json=account)).status_code == 201
    form = {"username": account["email"], "password": account["password"]}
    login = await client.post("/api/v1/auth/login", data=form)
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    post = await client.post(
        "/api/v1/posts", json=example_body(spec, "PostCreate"), headers=headers
    )
    assert post.status_code == 201, post.text
    assert post.json()["title"] == "Shipping our first release"
    edit = example_body(spec, "PostUpdate")
    patched = await client.patch(f"/api/v1/posts/{post.json()['id']}", json=edit, headers=headers)
    assert patched.status_code == 200, patched.text
    comment = {**example_body(spec, "CommentCreate"), "post_id": post.json()["id"]}
    assert (await client.post("/api/v1/comments", json=comment, headers=headers)).status_code == 201


async def test_the_server_is_the_address_the_client_used(client: Any) -> None:
    direct = (await client.get("/openapi.json")).json()
    assert direct["servers"] == [{"url": "http://testserver"}]
    forwarded = await client.get("/openapi.json", headers={"Host": "api.example.com:8443"})
    assert forwarded.json()["servers"] == [{"url": "http://api.example.com:8443"}]
    # The scheme a trusted proxy forwarded: tests/deploy/test_proxy_headers.py.
