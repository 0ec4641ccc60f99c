"""Examples for every schema property that declares none, derived from its type and name.

A model states realistic examples with `Field(schema_extra={"examples": [...]})`; the rest
(a scaffolded resource's fields, ids, timestamps) get one here, so `/docs` never shows
`"string"` or `0` and the example still satisfies the field's own limits.
"""

from typing import Any

EXAMPLE_TIME = "2026-03-14T09:26:53Z"
FORMAT_EXAMPLES: dict[str, Any] = {
    "date-time": EXAMPLE_TIME,
    "date": EXAMPLE_TIME[:10],
    "time": EXAMPLE_TIME[11:19],
    "email": "ada@example.com",
    "uri": "https://example.com/",
    "uuid": "3f2b8c1e-5d4a-4e6b-9c7d-2a1b0c9d8e7f",
}


def derived_example(name: str, schema: dict[str, Any]) -> Any:
    """An example value for property `name`, or None when its schema says too little."""
    for option in schema.get("anyOf", []):
        if option.get("type") != "null" and (value := derived_example(name, option)) is not None:
            return value
    if "enum" in schema:
        return schema["enum"][0]
    if schema.get("default") not in (None, "", [], {}):
        return schema["default"]
    kind = schema.get("type")
    if kind == "string":
        return FORMAT_EXAMPLES.get(schema.get("format", "")) or _text(name, schema)
    if kind == "integer":
        return max(schema.get("minimum", 1), 1) if name == "id" or name.endswith("_id") else 3
    if kind == "number":
        return 2.5
    if kind == "boolean":
        return True
    if kind == "array" and (item := derived_example(name, schema.get("items", {}))) is not None:
        return [item]
    return None


def _text(name: str, schema: dict[str, Any]) -> str:
    text = f"Example {name.replace('_', ' ')}"
    text = text.ljust(schema.get("minLength", 0), ".")
    return text[: schema.get("maxLength", len(text))]


def add_examples(openapi: dict[str, Any]) -> dict[str, Any]:
    """Give each component schema's properties an example where they declare none."""
    for schema in openapi.get("components", {}).get("schemas", {}).values():
        for name, prop in schema.get("properties", {}).items():
            if "examples" in prop or "example" in prop or "$ref" in prop:
                continue
            if (value := derived_example(name, prop)) is not None:
                prop["examples"] = [value]
    return openapi
