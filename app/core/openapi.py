"""The OpenAPI document: its front matter (title, version, description, contact, license) and
the finishing passes over FastAPI's output (problem schemas, examples).

The description is Markdown in `openapi.md` beside this module; its `$NAME` placeholders are
settings, so the limits it states are the ones this deployment enforces.
"""

from pathlib import Path
from string import Template
from typing import Any

from fastapi import FastAPI

from app.core.config import Settings
from app.core.examples import add_examples
from app.core.problem_docs import add_problem_schemas

TITLE = "CRUD backend API"
VERSION = "1.0.0"
DESCRIPTION = Path(__file__).with_name("openapi.md")


def description(settings: Settings) -> str:
    """The Markdown of `info.description`, with the settings it names filled in."""
    return Template(DESCRIPTION.read_text(encoding="utf-8")).substitute(settings.model_dump())


def api_info(settings: Settings) -> dict[str, Any]:
    """`FastAPI(...)` arguments for the document's `info`; contact and license only when set."""
    info: dict[str, Any] = {
        "title": TITLE,
        "version": VERSION,
        "description": description(settings),
    }
    contact = {"email": settings.API_CONTACT_EMAIL, "url": settings.API_CONTACT_URL}
    if any(contact.values()):
        info["contact"] = {key: value for key, value in contact.items() if value}
    if settings.API_LICENSE_NAME:
        info["license_info"] = {"name": settings.API_LICENSE_NAME}
        if settings.API_LICENSE_URL:
            info["license_info"]["url"] = settings.API_LICENSE_URL
    return info


EVENT_STREAM = "text/event-stream"
EVENT_STREAM_SCHEMA = {
    "type": "string",
    "description": "Server-Sent Events: `event:`, `id:` and `data:` lines, a blank line after each",
}


def describe_event_streams(openapi: dict[str, Any]) -> dict[str, Any]:
    """FastAPI describes a stream's events with OpenAPI 3.2's `itemSchema`, which a 3.1
    document may not hold: the stream is text in 3.1 (its events are in the description)."""
    for path_item in openapi.get("paths", {}).values():
        for operation in path_item.values():
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                if EVENT_STREAM in content:
                    content[EVENT_STREAM] = {"schema": EVENT_STREAM_SCHEMA}
    return openapi


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """`app.openapi`: FastAPI's document, finished once and kept."""
    if not app.openapi_schema:
        document = describe_event_streams(FastAPI.openapi(app))
        app.openapi_schema = add_examples(add_problem_schemas(document))
    return app.openapi_schema
