"""A request id for every HTTP request, on every log line and in the response.

Pure ASGI middleware (streams stay streams). A client's ``X-Request-ID`` is kept when it
matches ``[A-Za-z0-9._-]{1,64}``, otherwise a new id is made; either way the response
carries it in ``X-Request-ID``, and one access line is logged when the response ends.
"""

from __future__ import annotations

import logging
import time

from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xnai.api.metrics import route_template
from xnai.logs import REQUEST_ID, accept_request_id

HEADER = b"x-request-id"
# Probes and scrapes arrive every few seconds: their access lines are DEBUG.
QUIET_PATHS = frozenset({"/health", "/ready", "/metrics"})

access_log = logging.getLogger("xnai.http")


def incoming_id(scope: Scope) -> str | None:
    """The request's ``X-Request-ID`` header, if any (undecodable: None)."""
    for name, value in scope.get("headers", []):
        if name.lower() == HEADER:
            try:
                return bytes(value).decode("ascii")
            except UnicodeDecodeError:
                return None
    return None


class RequestIdMiddleware:
    """Sets ``xnai.logs.REQUEST_ID`` while a request is handled and echoes it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = accept_request_id(incoming_id(scope))
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500  # if the app fails before it answers

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER]
                headers.append((HEADER, request_id.encode("ascii")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except BaseException:
            # Left set: the server logs the error next, in this same task, with the id.
            _access(scope, status, started)
            raise
        _access(scope, status, started)
        REQUEST_ID.reset(token)


def _access(scope: Scope, status: int, started: float) -> None:
    # The route's template (``/v1/users/{username}``), never the path as sent: paths hold
    # user names and other values a person can ask to have erased.
    path = route_template(scope)
    level = logging.DEBUG if path in QUIET_PATHS else logging.INFO
    access_log.log(
        level,
        "%s %s %s",
        scope.get("method", "?"),
        path,
        status,
        extra={
            "method": scope.get("method"),
            "path": path,
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        },
    )


def install(app: Starlette) -> None:
    """Wrap ``app``'s whole middleware stack in RequestIdMiddleware, outside even the
    server-error layer, so a 500 carries the id and its traceback line is logged with it.
    Call it after every other wrapper of the stack (it must be the outermost)."""
    build = app.build_middleware_stack

    def build_with_ids() -> ASGIApp:
        return RequestIdMiddleware(build())

    app.build_middleware_stack = build_with_ids  # type: ignore[method-assign]
