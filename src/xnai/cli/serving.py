"""How ``xnai serve`` speaks HTTP: uvicorn's h11 protocol with a deadline for request heads,
and the options that bound the connections it holds.

uvicorn closes a kept-alive connection that stays idle, but nothing else: a client that
connects and sends nothing, or sends its request line and headers a byte at a time
("slowloris"), holds its connection for as long as it likes, and a few hundred such
clients exhaust the server. Here every request head (the request line and the headers)
must be complete within ``server.header_timeout_seconds`` of the connection being made,
or of the first byte of a later request on a kept-alive connection; otherwise the server
answers 408 and closes the connection. Sending more bytes does not extend the deadline.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from xnai.config import Server

log = logging.getLogger("xnai.serving")

KEEP_ALIVE_SECONDS = 5  # an idle kept-alive connection is closed after this (uvicorn's default)
SPARE_FILES = 256  # descriptors besides one per connection: database, index, logs, models


def timeout_response(seconds: float) -> bytes:
    """The 408 answer to a client whose request head is late, as the API's errors look."""
    body = json.dumps({"error": f"request head not complete within {seconds:g} s"}).encode()
    return (
        b"HTTP/1.1 408 Request Timeout\r\n"
        b"content-type: application/json\r\n"
        b"content-length: %d\r\n"
        b"x-content-type-options: nosniff\r\n"
        b"cache-control: no-store\r\n"
        b"connection: close\r\n"
        b"\r\n%b" % (len(body), body)
    )


class HeadDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol that closes a connection whose request head is late.

    The clock starts when the connection is made, and again at the first byte of each later
    request on a kept-alive connection (or when a response completes with part of the next
    request already received); it stops as soon as h11 has parsed the whole head. Bodies,
    responses and idle kept-alive connections are left to uvicorn.
    """

    header_timeout: float = 10.0
    _head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch_head(begun=True)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_head(begun=True)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # A pipelined request that is only partly here starts its clock now; with nothing
        # received yet the connection is idle, which uvicorn's keep-alive timeout covers.
        self._watch_head(begun=self._head_bytes() > 0)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_clock()
        super().connection_lost(exc)

    def _watch_head(self, *, begun: bool) -> None:
        """Run the clock while a begun head is incomplete; stop it otherwise."""
        waiting = self.conn.their_state is h11.IDLE and not self.transport.is_closing()
        if not (waiting and begun):
            self._stop_head_clock()
        elif self._head_deadline is None:
            self._head_deadline = self.loop.call_later(self.header_timeout, self._head_late)

    def _stop_head_clock(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_bytes(self) -> int:
        """Bytes of a request head received and not yet parsed."""
        return len(self.conn.trailing_data[0])

    def _head_late(self) -> None:
        self._head_deadline = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        received = self._head_bytes()
        log.debug(
            "closing a connection whose request head was not complete within %.1f s "
            "(%d bytes received)",
            self.header_timeout,
            received,
        )
        if received:  # a client that has begun a request is told why
            self.transport.write(timeout_response(self.header_timeout))
        self.transport.close()


def head_deadline_protocol(seconds: float) -> type[HeadDeadlineProtocol]:
    """The protocol class with a head deadline of ``seconds``."""
    if not seconds > 0:
        raise ValueError(f"the header timeout must be positive, not {seconds}")

    class Configured(HeadDeadlineProtocol):
        header_timeout = seconds

    Configured.__name__ = Configured.__qualname__ = HeadDeadlineProtocol.__name__
    return Configured


def uvicorn_options(server: Server) -> dict[str, Any]:
    """The uvicorn options that protect ``xnai serve``: always this h11 protocol (never
    httptools, which has no head deadline), 503 beyond ``server.max_connections`` open
    connections, and the keep-alive timeout."""
    return {
        "http": head_deadline_protocol(server.header_timeout_seconds),
        "limit_concurrency": server.max_connections,
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
    }


def ensure_open_files(connections: int) -> int:
    """Raise this process's soft limit of open files, within its hard limit, so that
    ``connections`` sockets and the server's own files fit; returns the soft limit in force
    (-1: unlimited or not known on this system)."""
    try:
        import resource
    except ImportError:  # not on this system (Windows)
        return -1
    wanted = connections + SPARE_FILES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return -1
    if soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("could not raise the limit of open files to %d: %s", target, exc)
    if soft < wanted:
        log.warning(
            "this process may open %d files, fewer than server.max_connections (%d) + %d: "
            "raise the hard limit (ulimit -Hn) or lower server.max_connections",
            soft,
            connections,
            SPARE_FILES,
        )
    return soft
