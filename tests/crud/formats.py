"""Assertions on the wire formats: problem+json errors and UTC datetimes."""

from datetime import datetime, timedelta
from typing import Any

from httpx import URL, Response

PROBLEM = "application/problem+json"

# Every list answer, in this order.
PAGE_FIELDS = ["items", "total", "total_estimated", "limit", "offset", "next_cursor"]


def assert_problem(response: Response, status: int, slug: str | None = None) -> dict[str, Any]:
    """The response is a problem document with this status (and type slug); returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"] and body["detail"]
    assert body["type"].startswith("/problems/")
    if slug is not None:
        assert body["type"] == f"/problems/{slug}"
    return body


def error_locs(body: dict[str, Any]) -> list[list[str | int]]:
    return [item["loc"] for item in body.get("errors") or []]


def assert_utc(value: str) -> datetime:
    """ISO 8601 with an explicit UTC offset; returns the parsed value."""
    assert value.endswith(("Z", "+00:00")), value
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() == timedelta(0)
    return parsed


def parse_links(header: str | None) -> dict[str, URL]:
    """`<url>; rel="next", <url>; rel="prev"` -> {"next": URL, "prev": URL}."""
    links = {}
    for part in (header or "").split(","):
        if not part.strip():
            continue
        target, rel = part.split(";", 1)
        name = rel.strip().removeprefix("rel=").strip('"')
        links[name] = URL(target.strip().removeprefix("<").removesuffix(">"))
    return links


def link_params(header: str | None) -> dict[str, dict[str, str]]:
    """rel -> the query parameters of that link, after checking the link is absolute."""
    params = {}
    for rel, url in parse_links(header).items():
        assert url.is_absolute_url and url.scheme == "http" and url.host == "testserver"
        params[rel] = dict(url.params)
    return params
