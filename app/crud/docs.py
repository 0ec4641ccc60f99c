"""The words `/docs` shows for a resource: summaries, descriptions and its tag.

Everything here is derived from the `Resource` (names, policies, visibility rule, headers
that apply), so a new resource is documented as well as the demo ones without writing prose.
"""

import inspect
from typing import Any

from app.crud.resource import Read, Resource, Write

READS = {
    Read.PUBLIC: "Anyone may read {plural}, without a token too.",
    Read.AUTHENTICATED: "Any signed-in user may read {plural}.",
    Read.OWNER: "Only their owner (or a superuser) may read {plural}; others' are a 404.",
}
WRITES = {
    Write.OWNER: "Writes: the owner or a superuser (another user's visible {singular} is a 403).",
    Write.AUTHENTICATED: "Writes: any signed-in user.",
    Write.SUPERUSER: "Writes: superusers only (a 403 for other users).",
}
CREATES = {
    Write.OWNER: "Any signed-in user may create {a}; later writes: its owner or a superuser.",
    Write.AUTHENTICATED: "Any signed-in user may create {a}.",
    Write.SUPERUSER: "Only superusers may create {plural} (a 403 for other users).",
}
ETAG = "The response carries the {singular}'s `ETag`."
IF_NONE_MATCH = "With `If-None-Match` naming the current `ETag`, the answer is 304 without a body."
IF_MATCH = (
    "With `If-Match`, the write happens only if the {singular} itself is still as that `ETag` "
    "names it (nested rows are not compared; else 412 `precondition-failed`, nothing changed); "
    "without it the last writer wins."
)
IDEMPOTENCY = (
    "An `Idempotency-Key` header makes retries safe: the same key and body within 24 hours "
    "return the first response; the same key with another body is 422 `idempotency-key-reused`."
)
LIST = (
    "Offset pages (`limit`, `offset`), or cursor pages (`cursor` = the previous page's "
    "`next_cursor`); `sort` and filters{search}. Offset pages carry `X-Total-Count` and `Link` "
    "(next/prev); cursor pages have `total: null` and `Link` next only."
)


def words(name: str) -> str:
    """A URL segment or table name as words: `post_votes` -> `post votes`."""
    return name.replace("_", " ").replace("-", " ")


def article(noun: str) -> str:
    """`a post`, `an entry`: by the first letter, which covers the usual resource names."""
    return f"an {noun}" if noun[:1].lower() in "aeiou" else f"a {noun}"


def list_text(resource: Resource) -> str:
    """The list contract in two sentences, naming the search fields if there are any."""
    fields = ", ".join(f"`{name}`" for name in resource.search_fields)
    return LIST.format(search=f", and `q` searching {fields}" if fields else "")


def access_rule(resource: Resource, operation: str) -> str:
    """Who may call the operation: the read or write policy, and the visibility rule."""
    names = {
        "plural": words(resource.plural),
        "singular": words(resource.singular),
        "a": article(words(resource.singular)),
    }
    if operation == "create":
        rule = CREATES[resource.write]
    elif operation in ("list", "get"):
        rule = f"{READS[resource.read]} {WRITES[resource.write]}"
    else:
        rule = WRITES[resource.write]
    rule = rule.format(**names)
    visibility = inspect.getdoc(resource.visibility) if resource.visibility else None
    if visibility:
        rule += f" {visibility.strip()}"
    inherited = [parent for parent in resource.parents if parent.inherits_visibility]
    for parent in inherited:
        rule += f" {article(words(resource.singular)).capitalize()} is visible when its"
        rule += f" {words(parent.resource.singular)} is."
    if (resource.visibility is not None or inherited) and operation != "create":
        rule += " What the caller cannot see is absent from lists and a 404 otherwise."
    return rule


def summaries(resource: Resource) -> dict[str, str]:
    """Operation -> summary: "List posts", "Create a post", "Update a post (partial)", ..."""
    one = article(words(resource.singular))
    return {
        "list": f"List {words(resource.plural)}",
        "get": f"Get {one}",
        "create": f"Create {one}",
        "update": f"Update {one} (partial)",
        "replace": f"Replace {one}",
        "delete": f"Delete {one}",
    }


def nested_summary(resource: Resource, parent: Resource) -> str:
    """ "List the comments of a post"."""
    return f"List the {words(resource.plural)} of {article(words(parent.singular))}"


def descriptions(resource: Resource) -> dict[str, str]:
    """Operation -> Markdown description: what it does, who may, and the headers that apply."""
    names = {"plural": words(resource.plural), "singular": words(resource.singular)}
    if_match = IF_MATCH.format(**names)
    etag = ETAG.format(**names)
    parts = {
        "list": [list_text(resource)],
        "get": [etag, IF_NONE_MATCH],
        "create": [f"201 with `Location` and `ETag`. {IDEMPOTENCY}"],
        "update": [
            "Changes only the fields sent; an explicit `null` clears a nullable field.",
            f"{etag} {if_match}",
        ],
        "replace": ["Sends every field of the Create schema.", f"{etag} {if_match}"],
        "delete": [f"204 without a body. {if_match}"],
    }
    for operation, texts in parts.items():
        texts.append(access_rule(resource, operation))
    if resource.expand:
        relations = ", ".join(f"`{expand.name}`" for expand in resource.expand)
        nesting = f"`expand` nests related rows ({relations}) that the caller may read."
        for operation in ("list", "get", "create", "update", "replace"):
            parts[operation].append(nesting)
    if resource.owner_field:
        parts["create"].append(f"`{resource.owner_field}` is the caller, taken from the token.")
    for parent in resource.parents:
        reference = (
            f"`{parent.field}` must name {article(words(parent.resource.singular))} the caller "
            "can see (else 422 `missing-reference`)."
        )
        schemas = {"create": resource.create, "update": resource.update, "replace": resource.create}
        for operation, schema in schemas.items():
            if parent.field in schema.model_fields:
                parts[operation].append(reference)
    return {operation: "\n\n".join(texts) for operation, texts in parts.items()}


def nested_description(resource: Resource, parent: Resource) -> str:
    """`GET /<parent>/{id}/<plural>`: the list contract, scoped to one visible parent."""
    names = {"plural": words(resource.plural), "parent": words(parent.singular)}
    scope = "The {plural} of one {parent} the caller can see (a 404 otherwise).".format(**names)
    return "\n\n".join([scope, list_text(resource), access_rule(resource, "list")])


def resource_tag(resource: Resource) -> dict[str, Any]:
    """The resource's OpenAPI tag, described by its table model's docstring."""
    # The class's own docstring: inspect.getdoc would fall back to a base class's.
    doc = resource.table.__doc__
    text = inspect.cleandoc(doc) if doc else f"The {words(resource.plural)} resource."
    return {"name": resource.plural, "description": text}


def route_docs(resource: Resource, operation: str) -> dict[str, Any]:
    """The `summary` and `description` route arguments of one generated operation."""
    return {
        "summary": summaries(resource)[operation],
        "description": descriptions(resource)[operation],
    }
