"""The list format shared by every collection: body, `X-Total-Count` and `Link`."""

from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query, Response
from pydantic import BaseModel, create_model
from starlette.datastructures import URL

ItemT = TypeVar("ItemT")

MAX_LIMIT = 100
DEFAULT_LIMIT = 20

LimitParam = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")]
OffsetParam = Annotated[int, Query(ge=0, description="Rows to skip")]


class Page(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    total: int | None
    total_estimated: bool = False
    limit: int
    offset: int | None
    next_cursor: str | None = None


def page_model(item_model: type[BaseModel], name: str | None = None) -> type[Page[Any]]:
    """`Page[PostPublic]` named `PostList` in the OpenAPI document."""
    name = name or item_model.__name__.removesuffix("Public") + "List"
    return create_model(name, __base__=Page[item_model])  # type: ignore[valid-type]  # a runtime type


def set_page_headers(
    response: Response,
    url: URL,
    *,
    total: int,
    limit: int,
    offset: int,
    max_offset: int | None = None,
    next_cursor: str | None = None,
) -> None:
    """`X-Total-Count` and `Link` next/prev (absolute URLs) for an offset page.

    Where the next offset would pass `max_offset`, `next` continues by cursor instead, so a
    client that follows `Link` never meets the offset cap's 422.
    """
    response.headers["X-Total-Count"] = str(total)
    links = []
    if offset + limit < total:
        if max_offset is None or offset + limit <= max_offset:
            links.append(f'<{url.include_query_params(offset=offset + limit)}>; rel="next"')
        elif next_cursor is not None:
            links.append(f'<{_cursor_url(url, next_cursor)}>; rel="next"')
    if offset > 0:
        links.append(f'<{url.include_query_params(offset=max(offset - limit, 0))}>; rel="prev"')
    if links:
        response.headers["Link"] = ", ".join(links)


def _cursor_url(url: URL, cursor: str) -> URL:
    return url.remove_query_params("offset").include_query_params(cursor=cursor)


def set_cursor_link(response: Response, url: URL, next_cursor: str | None) -> None:
    """Cursor pages link forward only."""
    if next_cursor is not None:
        response.headers["Link"] = f'<{_cursor_url(url, next_cursor)}>; rel="next"'
