"""The sync routes of one resource: `GET /<plural>/changes` and `GET /<plural>/events`.

The endpoints are closures whose annotations are the resource's runtime schemas; keep
`from __future__ import annotations` out of this module.
"""

from collections.abc import AsyncIterable, AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

from fastapi import Depends, Header, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent

from app.core.errors import NotAuthenticated
from app.core.problem_docs import problem_responses
from app.crud.resource import Read, Viewer
from app.crud.responses import database, json_response
from app.crud.sync.changes import DEFAULT_LIMIT, MAX_LIMIT, Changes
from app.crud.sync.live import Feed, Subscriber
from app.crud.sync.token import SyncToken, decode_token

if TYPE_CHECKING:
    from app.crud.router import ResourceRoutes

SINCE_HELP = "The `token` of the last answer read; none: every row, as a first round"
Since = Annotated[str | None, Query(max_length=512, description=SINCE_HELP)]
LastEventId = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        max_length=512,
        description="Sent by EventSource on reconnects: resume after this event",
    ),
]
TOKEN_ERRORS = (401, 410, 422)


def feed_of(request: Request) -> Feed:
    feed: Feed = request.app.state.feed
    return feed


class SyncRoutes:
    """Adds the change feed and the live feed to a resource's `ResourceRoutes`."""

    def __init__(self, routes: "ResourceRoutes") -> None:
        self.routes = routes
        self.resource = routes.resource
        self.changes = Changes(routes.resource, routes.repository, routes.representation)

    def add(self) -> None:
        self.add_changes()
        self.add_events()

    def token(self, request: Request, text: str, parameter: str) -> SyncToken:
        settings = request.app.state.settings
        return decode_token(
            text, self.resource.plural, settings.SECRET_KEY, settings.SYNC_RETENTION_DAYS, parameter
        )

    def add_changes(self) -> None:
        routes = self.routes
        Reader: TypeAlias = Annotated[Viewer, Depends(routes.read_viewer)]
        plural, singular = self.resource.plural, self.resource.singular

        @routes.router.get(
            "/changes",
            operation_id=f"{plural}-changes",
            summary=f"Changes to {plural} since a sync token",
            description=(
                f"Without `since`: every {singular} you may read, a page at a time, as a first "
                f"round. With the `token` of the last answer: the {plural} created or changed "
                "since, as they are now, and the ids of those deleted or no longer visible to "
                "you. Read again while `has_more`. Following tokens never misses a change "
                "(docs/sync.md); a token older than SYNC_RETENTION_DAYS is 410: start over."
            ),
            response_model=self.changes.model,
            responses=problem_responses(*TOKEN_ERRORS),
        )
        async def changes(
            request: Request,
            viewer: Reader,
            since: Since = None,
            limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
        ) -> Any:
            if since is None:
                token = SyncToken.start(plural)
            else:
                token = self.token(request, since, "query.since")
            page = await self.changes.read(database(request), viewer, token, limit)
            return json_response(self.changes.body(page, request.app.state.settings.SECRET_KEY))

    def add_events(self) -> None:
        routes = self.routes
        table = self.resource.sa_table.name
        plural = self.resource.plural
        Caller: TypeAlias = Annotated[Viewer, Depends(routes.viewers.optional)]
        Ticket: TypeAlias = Annotated[Viewer | None, Depends(routes.viewers.ticket)]

        async def subscription(
            request: Request,
            caller: Caller,
            ticket: Ticket,
            since: Since = None,
            last_event_id: LastEventId = None,
        ) -> AsyncIterator[Subscriber]:
            viewer = ticket or caller
            if self.resource.read is not Read.PUBLIC and viewer.id is None:
                raise NotAuthenticated()
            feed = feed_of(request)
            if last_event_id is not None:
                token = self.token(request, last_event_id, "header.Last-Event-ID")
            elif since is not None:
                token = self.token(request, since, "query.since")
            else:
                token = await feed.now(plural)
            subscriber = feed.subscribe(table, self.changes, viewer, token)
            try:
                yield subscriber
            finally:
                subscriber.close()

        Subscription: TypeAlias = Annotated[Subscriber, Depends(subscription)]

        @routes.router.get(
            "/events",
            operation_id=f"{plural}-events",
            summary=f"Live changes to {plural} (Server-Sent Events)",
            description=(
                "A `text/event-stream`. The first event, `ready`, carries the position the "
                "stream starts from as its `id`; each `changes` event carries the same records "
                "as `/changes`, its `id` the sync token after them. A reconnect with "
                "`Last-Event-ID` (EventSource sends it) or `since` resumes with no gap. "
                "Comments (`: ping`) keep idle proxies from closing the stream. Browsers, whose "
                "EventSource cannot send a header, pass a `ticket` from "
                "`POST /api/v1/auth/stream-ticket`. 503 with Retry-After past SSE_MAX_CLIENTS "
                "streams per worker."
            ),
            response_class=EventSourceResponse,
            responses=problem_responses(*TOKEN_ERRORS, 503),
        )
        async def events(
            request: Request, subscriber: Subscription
        ) -> AsyncIterable[ServerSentEvent]:
            secret = request.app.state.settings.SECRET_KEY
            start = subscriber.start.encode(secret)
            yield ServerSentEvent(raw_data=f'{{"token":"{start}"}}', id=start, event="ready")
            async for event in subscriber.events():
                yield event
