"""The query parameters of a generated list: a pydantic model per resource.

The model documents every parameter and, with `extra="forbid"`, refuses the ones it does
not know. It is validated from the keys a request sends, not by FastAPI's query-model
support, which walks all of its (dozens of) fields in Python on every request.

Two limits come from the settings, so `parse` checks them after the model: `offset` up to
MAX_OFFSET (the database reads and drops every row it skips; deeper pages use cursors) and
at most MAX_IN_VALUES values in an `__in` list.
"""

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

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

from app.core.errors import Unprocessable
from app.crud.expand import expand_parameter
from app.crud.filters import field_kind, filter_params
from app.crud.pagination import DEFAULT_LIMIT, MAX_LIMIT
from app.crud.plan import parse_sort, sortable
from app.crud.relations import Relations
from app.crud.resource import Resource
from app.crud.sparse import fields_parameter


def _split_commas(value: Any) -> Any:
    values = value if isinstance(value, list) else [value]
    return [part for item in values for part in str(item).split(",") if part != ""]


def list_params_model(
    resource: Resource,
    default_sort: str,
    relations: Relations | None = None,
    extra_filters: tuple[str, ...] = (),
) -> type[BaseModel]:
    """The list's parameters; `expand` is checked against the relations later (expand.py)."""
    sort_fields = sortable(resource, relations)
    filters = filter_params(resource, relations, extra_filters)
    fields: dict[str, Any] = {
        "limit": (int, Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Page size")),
        "offset": (
            int | None,
            Field(
                None,
                ge=0,
                description="Rows to skip (default 0; at most the server's MAX_OFFSET, 10,000 "
                "unless configured: deeper pages use `cursor`)",
            ),
        ),
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
    names = Annotated[list[str], BeforeValidator(_split_commas)] | None
    if resource.expand:  # both checked later, against the relations and the item model
        fields["expand"] = (names, Field(None, description="Related rows to nest"))
    fields["fields"] = (names, Field(None, description="Only these properties"))
    if resource.search_fields:
        description = "Case-insensitive search in " + ", ".join(resource.search_fields)
        fields["q"] = (str | None, Field(None, max_length=200, description=description))
    for param, (name, operator) in filters.items():
        kind = field_kind(resource, relations, name)
        value: Any = kind
        if operator.value == "flag":
            value = bool
        elif operator.value == "list":
            value = Annotated[list[kind], BeforeValidator(_split_commas)]  # type: ignore[valid-type]  # a runtime type
        description = operator.describe.format(field=name)
        fields[param] = (value | None, Field(None, description=description))
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

    validators: dict[str, Any] = {"check_names": model_validator(mode="before")(check_names)}
    return create_model(
        f"{resource.name}ListParams",
        __config__=ConfigDict(extra="forbid"),
        __validators__=validators,
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

    def __init__(
        self,
        resource: Resource,
        relations: Relations,
        selectable: Mapping[str, Sequence[str]] | None = None,
        extra_filters: tuple[str, ...] = (),
    ) -> None:
        self.model = list_params_model(resource, resource.default_sort, relations, extra_filters)
        self.filters = filter_params(resource, relations, extra_filters)
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
            if name not in ("expand", "fields")
        ]
        if resource.expand:
            self.openapi_parameters.append(expand_parameter(relations))
        if selectable is not None:
            self.openapi_parameters.append(fields_parameter(selectable))
        self.repeatable = {
            name for name, (_, operator) in self.filters.items() if operator.value == "list"
        } | {"expand", "fields"}

    def parse(self, query: QueryParams, max_offset: int, max_in_values: int) -> dict[str, Any]:
        """The validated parameters, defaults included; 422 as FastAPI words it otherwise,
        and for an offset past `max_offset` or an `__in` list of more than `max_in_values`."""
        sent = {key: query.getlist(key) if key in self.repeatable else query[key] for key in query}
        try:
            params = self.model.model_validate(sent).model_dump()
        except ValidationError as error:
            raise RequestValidationError(
                [
                    {**item, "loc": ("query", *item["loc"])}
                    for item in error.errors(include_url=False)
                ]
            ) from None
        offset = params["offset"]
        if offset is not None and offset > max_offset:
            message = (
                f"offset may be at most {max_offset}: deeper pages use cursors "
                "(send a page's next_cursor back as cursor=)"
            )
            raise Unprocessable(message, errors=[_query_error("offset", message)])
        for name in sent:
            if name in self.repeatable and len(params[name]) > max_in_values:
                message = f"{name} takes at most {max_in_values} values"
                raise Unprocessable(message, errors=[_query_error(name, message)])
        return params


def _query_error(name: str, message: str) -> dict[str, Any]:
    return {"loc": ["query", name], "msg": message, "type": "too_large"}
