"""The OpenAPI document of the generated resources is good enough to generate a typed client."""

from http import HTTPStatus
from typing import Any

import pytest
from openapi_spec_validator import validate

from app.core.errors import PROBLEM_MEDIA_TYPE, STATUS_SLUGS
from app.crud.params import filter_params
from app.crud.resource import Resource, registry
from tests.crud.formats import PAGE_FIELDS

API = "/api/v1"
PROBLEM_SCHEMA = {"$ref": "#/components/schemas/Problem"}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
# operation -> (method, path below /api/v1/<plural>)
GENERATED = {
    "list": ("get", ""),
    "get": ("get", "/{item_id}"),
    "create": ("post", ""),
    "update": ("patch", "/{item_id}"),
    "delete": ("delete", "/{item_id}"),
}
RESOURCES = [resource for resource in registry if resource.plural in ("posts", "comments")]


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def operation(spec: dict[str, Any], resource: Resource, name: str) -> dict[str, Any]:
    method, suffix = GENERATED[name]
    return spec["paths"][f"{API}/{resource.plural}{suffix}"][method]  # type: ignore[no-any-return]


def schema_ref(content: dict[str, Any]) -> str:
    return content["application/json"]["schema"]["$ref"]  # type: ignore[no-any-return]


def test_demo_resources_are_registered() -> None:
    assert sorted(resource.plural for resource in RESOURCES) == ["comments", "posts"]


def test_the_document_validates(spec: dict[str, Any]) -> None:
    validate(spec)


def test_operation_ids_are_unique(spec: dict[str, Any]) -> None:
    ids = [item["operationId"] for _, _, item in operations(spec)]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda resource: resource.plural)
def test_generated_operations_follow_the_naming_pattern(
    spec: dict[str, Any], resource: Resource
) -> None:
    for name in GENERATED:
        item = operation(spec, resource, name)
        assert item["operationId"] == f"{resource.plural}-{name}"
        assert item["tags"] == [resource.plural]
    tagged = [item for _, _, item in operations(spec) if resource.plural in item["tags"]]
    assert all(item["operationId"].startswith(f"{resource.plural}-") for item in tagged)


def test_the_nested_comment_list_is_documented(spec: dict[str, Any]) -> None:
    nested = spec["paths"][f"{API}/posts/{{parent_id}}/comments"]["get"]
    flat = spec["paths"][f"{API}/comments"]["get"]
    assert nested["tags"] == ["comments"]
    assert nested["operationId"].startswith("comments-list")
    assert schema_ref(nested["responses"]["200"]["content"]).endswith("/CommentList")
    flat_params = [param["name"] for param in flat["parameters"]]
    nested_params = [param["name"] for param in nested["parameters"] if param["in"] == "query"]
    assert nested_params == flat_params
    assert nested["responses"]["404"]["content"]["application/problem+json"]["schema"] == (
        PROBLEM_SCHEMA
    )


@pytest.mark.parametrize("prefix", ["Post", "Comment"])
def test_schemas_are_named_after_the_sqlmodel_classes(spec: dict[str, Any], prefix: str) -> None:
    schemas = spec["components"]["schemas"]
    for suffix in ("Create", "Update", "Public", "List"):
        assert f"{prefix}{suffix}" in schemas
    page = schemas[f"{prefix}List"]
    assert set(page["properties"]) == set(PAGE_FIELDS)
    assert page["properties"]["items"]["items"] == {"$ref": f"#/components/schemas/{prefix}Public"}
    assert schemas[f"{prefix}Create"].get("additionalProperties") is False
    assert schemas[f"{prefix}Update"].get("additionalProperties") is False
    assert "required" not in schemas[f"{prefix}Update"]


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda resource: resource.plural)
def test_operations_use_the_named_schemas(spec: dict[str, Any], resource: Resource) -> None:
    prefix = f"#/components/schemas/{resource.name}"
    create, update = operation(spec, resource, "create"), operation(spec, resource, "update")
    assert schema_ref(create["requestBody"]["content"]) == f"{prefix}Create"
    assert schema_ref(update["requestBody"]["content"]) == f"{prefix}Update"
    assert schema_ref(create["responses"]["201"]["content"]) == f"{prefix}Public"
    assert schema_ref(update["responses"]["200"]["content"]) == f"{prefix}Public"
    get = operation(spec, resource, "get")
    assert schema_ref(get["responses"]["200"]["content"]) == f"{prefix}Public"
    listing = operation(spec, resource, "list")
    assert schema_ref(listing["responses"]["200"]["content"]) == f"{prefix}List"
    assert "204" in operation(spec, resource, "delete")["responses"]


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda resource: resource.plural)
def test_list_params_are_documented(spec: dict[str, Any], resource: Resource) -> None:
    params = {param["name"]: param for param in operation(spec, resource, "list")["parameters"]}
    assert {"limit", "offset", "sort"} <= set(params)
    assert all(param["in"] == "query" and not param["required"] for param in params.values())
    assert params["limit"]["schema"]["maximum"] == 100
    assert params["limit"]["schema"]["default"] == 20
    assert params["offset"]["schema"]["anyOf"][0]["minimum"] == 0
    sort_description = params["sort"]["description"]
    assert all(field in sort_description for field in resource.sort_fields or ())
    filters = filter_params(resource)
    assert set(filters) <= set(params)
    assert ("q" in params) == bool(resource.search_fields)
    if resource.search_fields:
        assert all(field in params["q"]["description"] for field in resource.search_fields)


def test_post_filters_cover_every_operator_its_fields_allow(spec: dict[str, Any]) -> None:
    names = {param["name"] for param in spec["paths"][f"{API}/posts"]["get"]["parameters"]}
    for field in ("title", "content"):
        for operator in ("", "__ne", "__in", "__isnull", "__contains", "__startswith"):
            assert f"{field}{operator}" in names
        assert f"{field}__icontains" in names
    for field in ("id", "owner_id", "votes", "created_at", "updated_at"):
        for operator in ("", "__ne", "__lt", "__lte", "__gt", "__gte", "__in", "__isnull"):
            assert f"{field}{operator}" in names
        assert f"{field}__contains" not in names
    assert {"published", "published__ne", "published__in", "published__isnull"} <= names
    assert "published__lt" not in names
    assert not {"owner", "owner__id", "version"} & names


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda resource: resource.plural)
def test_errors_of_generated_operations_are_documented(
    spec: dict[str, Any], resource: Resource
) -> None:
    expected = {
        "list": {"422"},
        "get": {"404", "422"},
        "create": {"401", "409", "422"},
        "update": {"401", "403", "404", "409", "422"},
        "delete": {"401", "403", "404", "422"},
    }
    for name, statuses in expected.items():
        responses = operation(spec, resource, name)["responses"]
        assert statuses <= set(responses), (resource.plural, name)


def test_every_error_response_is_a_problem_with_an_example_of_its_status(
    spec: dict[str, Any],
) -> None:
    seen = 0
    for method, path, item in operations(spec):
        for status, response in item["responses"].items():
            if status[0] in "45":
                where = (method, path, status)
                [(media_type, content)] = response["content"].items()
                assert (media_type, content["schema"]) == (PROBLEM_MEDIA_TYPE, PROBLEM_SCHEMA)
                example = content["example"]
                assert example["status"] == int(status), where
                assert example["title"] == HTTPStatus(int(status)).phrase, where
                assert example["type"] == f"/problems/{STATUS_SLUGS[int(status)]}", where
                assert example["detail"] and example["detail"] != example["title"], where
                seen += 1
    assert seen > 100
    problem = spec["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail"} <= set(problem["required"])
