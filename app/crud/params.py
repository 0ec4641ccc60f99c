"""The query parameters of a generated list: a pydantic model per resource.

The model documents every parameter and, with `extra="forbid"`, refuses the ones it does
not know. It is validated from the keys a request sends, not by FastAPI's query-model
support, which walks all of its (dozens of) fields in Python on every request.
"""

from datetime import date, datetime
from decimal import Decimal
from types import NoneType, UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from fastapi.exceptions import RequestValidationError
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    model_validator,
)
from starlette.datastructures import QueryParams

from app.crud.pagination import DEFAULT_LIMIT, MAX_LIMIT
from app.crud.resource import Resource

ORDERED_TYPES = (int, float, Decimal, datetime, date, str)
COMPARISONS = ("ne", "lt", "lte", "gt", "gte")
STRING_MATCHES = ("contains", "startswith", "icontains")


def _split_commas(value: Any) -> Any:
    values = value if isinstance(value, list) else [value]
    return [part for item in values for part in str(item).split(",") if part != ""]


def without_none(annotation: Any) -> Any:
    """`X | None` -> `X`; anything else as it is."""
    if get_origin(annotation) in (Union, UnionType):
        return next(arg for arg in get_args(annotation) if arg is not NoneType)
    return annotation


def python_type(resource: Resource, field: str) -> type:
    """The field's type on the table model, without `| None`."""
    annotation = without_none(resource.table.model_fields[field].annotation)
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation if isinstance(annotation, type) else str


def filter_operators(kind: type) -> tuple[str, ...]:
    """The operators a column of this Python type allows (besides plain equality)."""
    operators: tuple[str, ...] = ("ne",)
    if issubclass(kind, ORDERED_TYPES) and kind is not bool:
        operators = COMPARISONS
    operators += ("in", "isnull")
    if kind is str:
        operators += STRING_MATCHES
    return operators


def filter_params(resource: Resource) -> dict[str, tuple[str, str]]:
    """Query parameter name -> (field, operator) for every allowed filter."""
    params = {}
    for name in resource.filter_fields or ():
        params[name] = (name, "eq")
        for operator in filter_operators(python_type(resource, name)):
            params[f"{name}__{operator}"] = (name, operator)
    return params


def parse_sort(value: str, allowed: tuple[str, ...]) -> list[tuple[str, bool]]:
    """`-created_at,id` -> [("created_at", True), ("id", False)]; True means descending."""
    keys = []
    for item in value.split(","):
        name = item.strip()
        descending = name.startswith("-")
        name = name.removeprefix("-")
        if name not in allowed:
            raise ValueError(f"cannot sort by {name!r}; allowed: {', '.join(allowed)}")
        keys.append((name, descending))
    return keys


def list_params_model(resource: Resource, default_sort: str) -> type[BaseModel]:
    sort_fields = resource.sort_fields or ()
    filters = filter_params(resource)
    fields: dict[str, Any] = {
        "limit": (int, Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Page size")),
        "offset": (int | None, Field(None, ge=0, description="Rows to skip (default 0)")),
        "cursor": (
            str | None,
            Field(
                None,
                max_length=2048,
                description="`next_cursor` of the previous page (keyset paging; `total` is null)",
            ),
        ),
        "sort": (
            str,
            Field(
                default_sort,
                description="Comma-separated fields, `-` for descending. Allowed: "
                + ", ".join(sort_fields),
            ),
        ),
    }
    if resource.search_fields:
        description = "Case-insensitive search in " + ", ".join(resource.search_fields)
        fields["q"] = (str | None, Field(None, max_length=200, description=description))
    for param, (name, operator) in filters.items():
        kind = python_type(resource, name)
        if operator == "isnull":
            fields[param] = (bool | None, Field(None, description=f"{name} is (not) null"))
        elif operator == "in":
            item = Annotated[list[kind], BeforeValidator(_split_commas)]  # type: ignore[valid-type]
            fields[param] = (
                item | None,
                Field(None, description=f"{name} in a comma-separated list"),
            )
        else:
            fields[param] = (kind | None, Field(None, description=f"{name} {operator}"))
    allowed = set(fields)

    def check_names(cls: type[BaseModel], data: Any) -> Any:
        unknown = sorted(set(data) - allowed) if isinstance(data, dict) else []
        if unknown:
            raise ValueError(
                f"unknown query parameter(s) {', '.join(unknown)}; allowed: "
                + ", ".join(sorted(allowed))
            )
        if isinstance(data, dict):
            if data.get("cursor") is not None and data.get("offset") is not None:
                raise ValueError("use either cursor or offset, not both")
            if isinstance(data.get("sort"), str):
                parse_sort(data["sort"], sort_fields)
        return data

    return create_model(  # type: ignore[call-overload,no-any-return]
        f"{resource.name}ListParams",
        __config__=ConfigDict(extra="forbid"),
        __validators__={"check_names": model_validator(mode="before")(check_names)},
        **fields,
    )


def _inline_refs(schema: Any, definitions: dict[str, Any]) -> Any:
    """A JSON schema with its local `$ref`s (enums, say) replaced by their definitions."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline_refs(definitions[ref.removeprefix("#/$defs/")], definitions)
        return {key: _inline_refs(value, definitions) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_inline_refs(item, definitions) for item in schema]
    return schema


class ListQuery:
    """Parses and documents the query string of a resource's list routes."""

    def __init__(self, resource: Resource) -> None:
        self.model = list_params_model(resource, resource.default_sort)
        schema = self.model.model_json_schema()
        definitions = schema.get("$defs", {})
        properties = schema["properties"]
        # The same Parameter objects FastAPI writes for a query model, for `openapi_extra`.
        self.openapi_parameters = [
            {
                "name": name,
                "in": "query",
                "required": False,
                "schema": _inline_refs(properties[name], definitions),
                **({"description": field.description} if field.description else {}),
            }
            for name, field in self.model.model_fields.items()
        ]
        self.repeatable = {
            name for name, (_, operator) in filter_params(resource).items() if operator == "in"
        }

    def parse(self, query: QueryParams) -> dict[str, Any]:
        """The validated parameters, defaults included; 422 as FastAPI words it otherwise."""
        sent = {key: query.getlist(key) if key in self.repeatable else query[key] for key in query}
        try:
            return self.model.model_validate(sent).model_dump()
        except ValidationError as error:
            raise RequestValidationError(
                [
                    {**item, "loc": ("query", *item["loc"])}
                    for item in error.errors(include_url=False)
                ]
            ) from None
