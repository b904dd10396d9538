"""Slow clients ("slowloris") against a running server: many sockets that send a request head
a byte at a time while ``GET /health`` is timed, then how soon the server closes them.

Used by the benchmark's ``serve`` section and by the tests of the request-head deadline.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from typing import Any

from bench.metrics import percentile
from xnai.cli.serving import ensure_open_files

# The start of a request head that never ends: slow clients send it a byte at a time.
ENDLESS_HEAD = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"z" * 4000
HEALTH = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
TARGET_P95_MS = 50.0


def connect(host: str, port: int) -> socket.socket:
    return socket.create_connection((host, port), timeout=30)


def read_to_end(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a reset ends it too)."""
    data = b""
    while True:
        try:
            piece = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not piece:
            return data
        data += piece


def health_ms(host: str, port: int) -> float:
    """Milliseconds for one ``GET /health`` on a new connection, as a health check makes it;
    an answer other than 200 is an error."""
    started = time.perf_counter()
    with connect(host, port) as sock:
        sock.sendall(HEALTH)
        answer = read_to_end(sock)
    elapsed = (time.perf_counter() - started) * 1000
    if not answer.startswith(b"HTTP/1.1 200 "):
        raise RuntimeError(f"/health answered {answer[:200]!r}")
    return elapsed


class SlowSockets:
    """``count`` sockets, each sending the next byte of ``ENDLESS_HEAD`` every ``interval``
    seconds until ``stop``."""

    def __init__(self, host: str, port: int, count: int, interval: float) -> None:
        self.opened: list[float] = []
        self.socks: list[socket.socket] = []
        for _ in range(count):
            self.opened.append(time.monotonic())
            sock = connect(host, port)
            sock.sendall(ENDLESS_HEAD[:1])
            sock.setblocking(False)
            self.socks.append(sock)
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        sent = 1
        while not self._stop.wait(self.interval) and sent < len(ENDLESS_HEAD):
            byte = ENDLESS_HEAD[sent : sent + 1]
            for sock in self.socks:
                with contextlib.suppress(OSError):  # closed by the server, or its buffer full
                    sock.send(byte)
            sent += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def wait_closed(self, seconds: float) -> tuple[list[float], list[bytes]]:
        """Seconds from opening to the server's close of each socket (inf: still open after
        ``seconds``), and what each received."""
        closed = [float("inf")] * len(self.socks)
        received = [b""] * len(self.socks)
        with selectors.DefaultSelector() as sel:
            for i, sock in enumerate(self.socks):
                sel.register(sock, selectors.EVENT_READ, i)
            deadline = time.monotonic() + seconds
            while sel.get_map() and time.monotonic() < deadline:
                for key, _ in sel.select(timeout=0.1):
                    i = key.data
                    try:
                        piece = self.socks[i].recv(65536)
                    except BlockingIOError:
                        continue
                    except ConnectionResetError:
                        piece = b""
                    received[i] += piece
                    if not piece:
                        closed[i] = time.monotonic() - self.opened[i]
                        sel.unregister(self.socks[i])
        return closed, received

    def close(self) -> None:
        self.stop()
        for sock in self.socks:
            sock.close()


def measure(
    host: str,
    port: int,
    *,
    sockets: int = 1000,
    seconds: float = 5.0,
    interval: float = 0.2,
    release_within: float = 120.0,
) -> dict[str, Any]:
    """``GET /health`` latency (one request after another, each on a new connection) for
    ``seconds`` while ``sockets`` slow sockets trickle their heads, then how long after
    opening the server closed them."""
    ensure_open_files(sockets + 16)
    for _ in range(5):  # warm up
        health_ms(host, port)
    latencies: list[float] = []
    errors = 0
    slow = SlowSockets(host, port, sockets, interval)
    try:
        opened_s = slow.opened[-1] - slow.opened[0]
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                latencies.append(health_ms(host, port))
            except (OSError, RuntimeError):
                errors += 1
        slow.stop()
        closed, received = slow.wait_closed(release_within)
    finally:
        slow.close()
    released = [t for t in closed if t != float("inf")]
    return {
        "slow_sockets": sockets,
        "byte_interval_s": interval,
        "open_all_s": opened_s,
        "window_s": seconds,
        "health_requests": len(latencies),
        "health_errors": errors,
        "health_p50_ms": percentile(latencies, 50) if latencies else None,
        "health_p95_ms": percentile(latencies, 95) if latencies else None,
        "health_p99_ms": percentile(latencies, 99) if latencies else None,
        "health_max_ms": max(latencies) if latencies else None,
        "target_p95_ms": TARGET_P95_MS,
        "released": len(released),
        "told_408": sum(r.startswith(b"HTTP/1.1 408 ") for r in received),
        "release_min_s": min(released) if released else None,
        "release_max_s": max(released) if released else None,
    }
