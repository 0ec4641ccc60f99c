"""Pure ASGI middleware: cheap enough to run on every request."""

import json
import logging
import os
import re
import time
import uuid

from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import problem_response, unhandled_error_response
from app.core.logging import request_id_context

REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
# In raw (lower-case) form: each response gets these in place of any the app set itself.
RAW_SECURITY_HEADERS = [
    (name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()
]
NO_STORE = (b"cache-control", b"no-store")
REPLACED = frozenset({b"server", b"x-request-id", *(name for name, _ in RAW_SECURITY_HEADERS)})
REPLACED_AUTHORISED = REPLACED | {NO_STORE[0]}

access_logger = logging.getLogger("app.access")


class RequestContextMiddleware:
    """Request id, security headers, `no-store` for authorised requests and one access-log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming_id, authorised = "", False
        for name, value in scope["headers"]:  # one pass over the raw headers
            if name == b"x-request-id":
                incoming_id = value.decode("latin-1")
            elif name == b"authorization":
                authorised = True
        request_id = incoming_id if REQUEST_ID_PATTERN.match(incoming_id) else str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id
        context_token = request_id_context.set(request_id)
        status = 500
        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
                # One pass over the raw list (MutableHeaders rescans it for every header set).
                replaced = REPLACED_AUTHORISED if authorised else REPLACED
                raw = [item for item in message.get("headers", ()) if item[0] not in replaced]
                raw.append((b"x-request-id", request_id.encode("latin-1")))
                raw += RAW_SECURITY_HEADERS
                if authorised:
                    raw.append(NO_STORE)
                message["headers"] = raw
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as error:
            # Handled here rather than by Starlette's outermost ServerErrorMiddleware, so the
            # 500 carries the request id and security headers and the traceback is logged once.
            if response_started:
                raise
            response = unhandled_error_response(scope, error)
            await response(scope, receive, send_with_headers)
        finally:
            request_id_context.reset(context_token)
            if access_logger.isEnabledFor(logging.INFO):
                access_logger.info(
                    json.dumps(
                        {
                            "request_id": request_id,
                            "user_id": scope["state"].get("user_id"),
                            "method": scope["method"],
                            "path": scope["path"],
                            "status": status,
                            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                            # Behind a trusted proxy, the address it forwarded; and the worker.
                            "client": scope["client"][0] if scope.get("client") else None,
                            "pid": os.getpid(),
                        }
                    )
                )


class BodySizeLimitMiddleware:
    """413 for bodies over the limit, before they are read whole."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            response = problem_response(413, self._detail())
            await response(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, self._detail())
            return message

        await self.app(scope, counting_receive, send)

    def _detail(self) -> str:
        return f"The request body is larger than {self.max_bytes} bytes"
