"""The metrics on a port of their own: prometheus_client's WSGI app in a thread, behind a
bearer token when one is set."""

from __future__ import annotations

import hmac
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import CollectorRegistry

from xnai.domain.network import is_loopback

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
REFUSED = b"authentication required: send Authorization: Bearer <prometheus_token>\n"


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Nothing: scrapes every few seconds would flood the log."""


def guarded(app: Wsgi, token: str) -> Wsgi:
    """``app`` answering only requests that carry ``Authorization: Bearer <token>``."""
    expected = f"Bearer {token}".encode()

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        given = str(environ.get("HTTP_AUTHORIZATION", "")).encode("utf-8", "replace")
        if not hmac.compare_digest(given, expected):
            headers = [("Content-Type", "text/plain; charset=utf-8")]
            start_response("401 Unauthorized", [*headers, ("WWW-Authenticate", "Bearer")])
            return [REFUSED]
        return app(environ, start_response)

    return wsgi


def serve(registry: CollectorRegistry, host: str, port: int, token: str) -> Callable[[], None]:
    """Serve ``registry`` on ``host:port`` in a background thread (only to holders of
    ``token`` when it is set; off loopback it must be); returns the function that stops it."""
    if not token and not is_loopback(host):
        raise ValueError(f"metrics on {host} (not a loopback address) need a bearer token")
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    server_class = type("MetricsServer", (ThreadingWSGIServer,), {"address_family": family})
    app: Wsgi = make_wsgi_app(registry)
    server: WSGIServer = make_server(
        host, port, guarded(app, token) if token else app, server_class, _Quiet
    )
    thread = threading.Thread(target=server.serve_forever, name="xnai-metrics", daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop
