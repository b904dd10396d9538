"""Feeds every query's latency and outcome to the anomaly detector (pure ASGI middleware).

A query is ``POST /v1/query`` (or ``/query``) or ``POST /v1/chat/completions``; its latency
runs until the last byte of the response, so a streamed answer counts whole. It failed when
the status is 5xx or a stream reported an ``error`` event; 4xx answers (bad input, no
permission, a full queue) are the caller's and are not counted at all.
"""

from __future__ import annotations

import json
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xnai.domain.metrics import Metrics
from xnai.services.anomaly import AnomalyWatch

QUERY_PATHS = frozenset({"/v1/query", "/query", "/v1/chat/completions"})
BODY_PEEK = 64 * 1024  # enough for any query's JSON; longer bodies count as generating
# How a stream reports a failure in-band: /v1/query and /v1/chat/completions.
SSE_ERRORS = (b"event: error\n", b'data: {"error":')


def generates(path: str, body: bytes) -> bool:
    """Whether a query asks for generation: all do except ``/v1/query`` with
    ``"generate": false``."""
    if path == "/v1/chat/completions" or b'"generate"' not in body:
        return True
    try:
        data = json.loads(body)
    except ValueError:
        return True
    return not (isinstance(data, dict) and data.get("generate") is False)


class QueryWatchMiddleware:
    """Reports each finished query to the anomaly detector and publishes its scores into
    ``metrics``."""

    def __init__(self, app: ASGIApp, anomalies: AnomalyWatch, metrics: Metrics) -> None:
        self.app = app
        self.anomalies = anomalies
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope.get("method") != "POST"
            or scope.get("path") not in QUERY_PATHS
        ):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        body = bytearray()
        seen = {"status": 500, "stream_error": False, "sse": False}

        async def receive_peek() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(body) < BODY_PEEK:
                body.extend(message.get("body", b"")[: BODY_PEEK - len(body)])
            return message

        async def send_watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                kind = dict(message.get("headers", [])).get(b"content-type", b"")
                seen["sse"] = kind.startswith(b"text/event-stream")
            elif message["type"] == "http.response.body" and seen["sse"]:
                chunk = message.get("body", b"")
                if any(chunk.startswith(m) or b"\n" + m in chunk for m in SSE_ERRORS):
                    seen["stream_error"] = True
            await send(message)

        try:
            await self.app(scope, receive_peek, send_watch)
        except Exception:
            seen["status"] = 500
            raise
        finally:
            self._record(scope["path"], bytes(body), seen, time.perf_counter() - started)

    def _record(self, path: str, body: bytes, seen: dict[str, bool | int], seconds: float) -> None:
        status = int(seen["status"])
        if 400 <= status < 500:
            return
        error = status >= 500 or bool(seen["stream_error"])
        self.anomalies.observe_query(seconds, error=error, generate=generates(path, body))
        self.anomalies.publish(self.metrics)
