"""Request metrics, and ``GET /metrics`` (Prometheus text exposition format).

Labels stay bounded: routes are path templates (``/v1/documents/{doc_id}``), statuses are
classes (``2xx``), error types are class names of the product's or Python's own errors. User
ids never leave the process: only the number of active users is reported.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from fastapi import FastAPI, Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xnai.api.security import public, require
from xnai.bootstrap import Container
from xnai.domain.errors import NotFoundError
from xnai.domain.identity import Authenticated
from xnai.domain.metrics import Metrics
from xnai.domain.rbac import Permission

log = logging.getLogger("xnai.api")

ACTIVE_WINDOW_S = 15 * 60.0
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "other"


@runtime_checkable
class Scrapeable(Protocol):
    """A ``Metrics`` that can be scraped (the Prometheus adapter)."""

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """The metrics in the format ``accept`` asks for, and its content type."""
        ...

    def read_at_scrape(self, name: str, read: Callable[[], float | None]) -> None:
        """Serve an unlabelled gauge from ``read`` at every scrape."""
        ...

    def serve(self, host: str, port: int, token: str = "") -> Callable[[], None]:
        """Serve the metrics on a port of their own (to holders of ``token`` when set);
        returns the function that stops it."""
        ...


class ActiveUsers:
    """Distinct principals with a request in the last ``window_s`` seconds; the ids stay in
    memory, only their number is reported."""

    def __init__(
        self, window_s: float = ACTIVE_WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window_s = window_s
        self.clock = clock
        self._last: OrderedDict[str, float] = OrderedDict()  # oldest request first
        self._lock = threading.Lock()

    def seen(self, user_id: str) -> None:
        """Note a request of ``user_id`` now."""
        with self._lock:
            self._last[user_id] = self.clock()
            self._last.move_to_end(user_id)
            self._forget_old()

    def count(self) -> int:
        """How many users made a request within the window."""
        with self._lock:
            self._forget_old()
            return len(self._last)

    def _forget_old(self) -> None:
        cutoff = self.clock() - self.window_s
        while self._last and next(iter(self._last.values())) < cutoff:
            self._last.popitem(last=False)


def route_template(scope: Scope) -> str:
    """The matched route's path template, or ``other``."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


def component_of(scope: Scope) -> str:
    """The API area a request belongs to (first segment of its route after ``/v1``)."""
    parts = [p for p in route_template(scope).split("/") if p and p != "v1"]
    return parts[0] if parts and parts[0] != UNMATCHED else "api"


def status_class(code: int) -> str:
    """``2xx``, ``4xx``, ... of a status code."""
    return f"{code // 100}xx"


def error_type(exc: BaseException) -> str:
    """The class name of the product's and Python's own errors; ``other`` for the rest."""
    kind = type(exc)
    mod = kind.__module__
    return kind.__name__ if mod == "builtins" or mod.startswith("xnai.domain.") else "other"


def count_error(request: Request, exc: BaseException, code: int) -> None:
    """Count a server-side failure (status 500 and above) by API area and error type."""
    container = getattr(request.app.state, "container", None)
    if code >= 500 and container is not None:
        container.metrics.inc(
            "xoe_error_count_total", component=component_of(request.scope), type=error_type(exc)
        )


def _user_of(scope: Scope) -> str | None:
    state = scope.get("state")
    auth = state.get("xnai_auth") if isinstance(state, dict) else None
    return auth.principal.user_id if isinstance(auth, Authenticated) else None


class RequestMetricsMiddleware:
    """Counts and times every HTTP request by method, route template and status class, and
    notes who made it (for the active-user count). Pure ASGI: streams stay streams."""

    def __init__(self, app: ASGIApp, metrics: Metrics, users: ActiveUsers) -> None:
        self.app = app
        self.metrics = metrics
        self.users = users

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an error escaped the app

        async def watching_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        finally:
            self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, elapsed: float) -> None:
        method = scope.get("method", "")
        method = method if method in METHODS else UNMATCHED
        route = route_template(scope)
        self.metrics.inc(
            "xoe_http_requests_total", method=method, route=route, status=status_class(status)
        )
        self.metrics.observe(
            "xoe_http_request_duration_seconds", elapsed, method=method, route=route
        )
        user = _user_of(scope)
        if user is not None:
            self.users.seen(user)


def loaded_components(c: Container) -> int:
    """Loaded adapter components: document loaders, the two indexes once open, the
    embedder, the chat model once loaded, and the answer cache when there is one."""
    count = len(c.loaders) + 1
    count += 2 if c.readiness.index_ready else 0
    count += 1 if c.model.loaded else 0
    count += 1 if c.cache is not None else 0
    return count


def install(app: FastAPI, metrics: Metrics, *, local: bool, components: Callable[[], int]) -> None:
    """Serve ``GET /metrics`` (public when the server is ``local``, see
    ``security.local_only``, else it needs ``read:metrics``) and keep this app's active-user
    figures; ``components`` counts the loaded components (see ``loaded_components``)."""
    users = ActiveUsers()
    app.state.xnai_active_users = users
    if isinstance(metrics, Scrapeable):
        metrics.read_at_scrape("xoe_active_users", users.count)
        metrics.read_at_scrape("xoe_wasm_component_count", components)
    guard = public() if local else require(Permission.READ_METRICS)

    @app.get("/metrics", dependencies=[guard], tags=["monitoring"], response_class=Response)
    def metrics_text(request: Request) -> Response:
        """Every metric in the Prometheus text exposition format (OpenMetrics on request)."""
        if not isinstance(metrics, Scrapeable):
            raise NotFoundError("metrics are off: set enterprise.monitoring.enabled = true")
        body, content_type = metrics.exposition(request.headers.get("accept"))
        return Response(body, media_type=content_type)


def install_middleware(app: FastAPI, metrics: Metrics) -> None:
    """Count and time every request (add it after the body limit, so 413s count too)."""
    users: ActiveUsers = app.state.xnai_active_users
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics, users=users)


def start_port_server(container: Container) -> Callable[[], None] | None:
    """Serve the metrics on ``enterprise.monitoring.prometheus_port`` (bound to
    ``prometheus_host``, behind ``prometheus_token`` when set) when monitoring is on and the
    port is set; returns the stop function."""
    mon = container.settings.enterprise.monitoring
    host, metrics = mon.prometheus_host, container.metrics
    if not mon.enabled or not mon.prometheus_port or not isinstance(metrics, Scrapeable):
        return None
    try:
        return metrics.serve(host, mon.prometheus_port, mon.prometheus_token.get_secret_value())
    except OSError as exc:  # the API itself still serves /metrics
        log.error(
            "cannot serve metrics on %s:%s (%s): choose a free "
            "enterprise.monitoring.prometheus_port, or 0 for none",
            host,
            mon.prometheus_port,
            exc,
        )
        return None
