"""Slow clients: ``xnai serve`` closes connections whose request head is late, keeps
answering while a thousand sockets trickle theirs, and bounds the connections it serves."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from bench import slow_clients
from bench.metrics import percentile
from bench.slow_clients import ENDLESS_HEAD, HEALTH, SlowSockets, read_to_end
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from typer.testing import CliRunner

from xnai.api.app import create_app
from xnai.bootstrap import Container
from xnai.cli import main as cli_main
from xnai.cli.serving import (
    KEEP_ALIVE_SECONDS,
    HeadDeadlineProtocol,
    ensure_open_files,
    head_deadline_protocol,
    uvicorn_options,
)
from xnai.config import Server, load_settings
from xnai.domain.errors import ConfigError

SLOW = 1000  # slow sockets in the flood
KEPT_ALIVE = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@contextmanager
def serving(app: Any, settings: Server) -> Iterator[uvicorn.Server]:
    """``app`` served by uvicorn with the options of ``xnai serve``, on a free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        log_config=None,
        **uvicorn_options(settings),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the server did not start"
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def connect(server: uvicorn.Server) -> socket.socket:
    return slow_clients.connect("127.0.0.1", server.config.port)


def health_ms(server: uvicorn.Server) -> float:
    return slow_clients.health_ms("127.0.0.1", server.config.port)


def open_connections(server: uvicorn.Server) -> int:
    return len(server.server_state.connections)


def wait_until(condition: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def read_response(sock: socket.socket) -> bytes:
    """One response with a Content-Length body, leaving the connection open."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        assert piece, f"closed after {data!r}"
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head


@pytest.fixture
def app(container: Container) -> Any:
    return create_app(container, warm=False)


def test_1000_slow_sockets_are_closed_after_the_header_timeout_while_health_answers(
    app: Any,
) -> None:
    """Item 18: 1,000 sockets sending a request head byte by byte neither stop the server
    answering ``/health`` nor stay open past ``server.header_timeout_seconds``."""
    timeout = 4.0
    if 0 <= ensure_open_files(3 * SLOW) < 2 * SLOW + 100:
        pytest.skip("too few open files allowed for a thousand sockets on both ends")
    with serving(app, Server(header_timeout_seconds=timeout)) as server:
        for _ in range(5):  # warm up
            health_ms(server)
        assert wait_until(lambda: open_connections(server) == 0, 10)
        slow = SlowSockets("127.0.0.1", server.config.port, SLOW, interval=0.2)
        try:
            # Measure while every slow socket is surely within its deadline.
            window = slow.opened[0] + timeout * 0.6
            assert wait_until(lambda: open_connections(server) >= SLOW, timeout / 2)
            assert all(isinstance(p, HeadDeadlineProtocol) for p in server.server_state.connections)
            held: list[int] = []
            latencies: list[float] = []
            while time.monotonic() < window:
                held.append(open_connections(server))
                latencies.append(health_ms(server))
            slow.stop()
            closed, received = slow.wait_closed(timeout + 30)
        finally:
            slow.close()
        assert wait_until(lambda: open_connections(server) == 0, 10)
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    print(
        f"\n/health with {SLOW} slow sockets: {len(latencies)} requests, p50 {p50:.1f} ms, "
        f"p95 {p95:.1f} ms, max {max(latencies):.1f} ms; slow sockets closed "
        f"{min(closed):.2f}-{max(closed):.2f} s after opening (header timeout {timeout} s)"
    )
    # The slow sockets were all held while /health was measured ...
    assert len(latencies) >= 10 and min(held) >= SLOW
    # ... and /health kept answering quickly (bounds for a busy test machine; the benchmark
    # section "serve" records the 50 ms p95 target).
    assert p95 < 1000 and p50 < 500, latencies
    # Every slow socket was closed by the server: not before its deadline, soon after it.
    assert all(timeout - 0.05 <= t < timeout + 30 for t in closed), sorted(closed)[-5:]
    # A client that has begun a request learns why (unless a late byte met the reset).
    told = sum(r.startswith(b"HTTP/1.1 408 Request Timeout\r\n") for r in received)
    assert told >= SLOW * 0.9
    assert all(r == b"" or r.startswith(b"HTTP/1.1 408 ") for r in received)


def test_a_kept_alive_connection_sending_its_next_head_slowly_is_closed(app: Any) -> None:
    timeout = 0.5
    with serving(app, Server(header_timeout_seconds=timeout)) as server, connect(server) as sock:
        sock.sendall(KEPT_ALIVE)
        assert read_response(sock).startswith(b"HTTP/1.1 200 ")
        sock.sendall(KEPT_ALIVE)  # a second request on the same connection is served too
        assert read_response(sock).startswith(b"HTTP/1.1 200 ")
        time.sleep(timeout * 2)  # idle: no head has begun, the keep-alive timeout applies
        started = time.monotonic()
        sock.settimeout(0.05)
        answer, sent = b"", 0
        while time.monotonic() - started < KEEP_ALIVE_SECONDS:
            try:
                piece = sock.recv(65536)  # read first: never send after the server's close
            except TimeoutError:
                sock.send(ENDLESS_HEAD[sent : sent + 1])
                sent += 1
                continue
            answer += piece
            if not piece:
                break
        elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"connection: close" in head and b"content-type: application/json" in head
    assert json.loads(body) == {"error": "request head not complete within 0.5 s"}
    assert timeout - 0.05 <= elapsed < KEEP_ALIVE_SECONDS


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(app: Any) -> None:
    with serving(app, Server(header_timeout_seconds=0.3)) as server, connect(server) as sock:
        started = time.monotonic()
        assert read_to_end(sock) == b""
        assert 0.25 <= time.monotonic() - started < 10
        assert wait_until(lambda: open_connections(server) == 0, 10)


def test_a_head_that_arrives_in_pieces_before_the_deadline_is_served(app: Any) -> None:
    with serving(app, Server(header_timeout_seconds=5)) as server, connect(server) as sock:
        for i in range(0, len(HEALTH), 8):
            sock.sendall(HEALTH[i : i + 8])
            time.sleep(0.02)
        answer = read_to_end(sock)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert b'"status":"ok"' in answer


def test_beyond_max_connections_requests_get_503(app: Any) -> None:
    with serving(app, Server(max_connections=3)) as server:
        idle = [connect(server) for _ in range(3)]
        try:
            assert wait_until(lambda: open_connections(server) >= 3, 10)
            with connect(server) as sock:
                sock.sendall(HEALTH)
                assert read_to_end(sock).startswith(b"HTTP/1.1 503 ")
        finally:
            for sock in idle:
                sock.close()
        assert wait_until(lambda: open_connections(server) == 0, 10)
        assert health_ms(server) > 0


def test_serve_uses_the_head_deadline_protocol_and_the_connection_bound(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setenv("XNAI_SERVER__HEADER_TIMEOUT_SECONDS", "2.5")
    monkeypatch.setenv("XNAI_SERVER__MAX_CONNECTIONS", "300")
    monkeypatch.setattr(cli_main, "configure_logging", lambda settings: None)
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: seen.update(options, app=app))
    result = CliRunner().invoke(cli_main.app, ["serve"])
    assert result.exit_code == 0, result.output
    protocol = seen["http"]
    assert isinstance(protocol, type) and issubclass(protocol, HeadDeadlineProtocol)
    assert protocol.header_timeout == 2.5
    assert seen["limit_concurrency"] == 300
    assert seen["timeout_keep_alive"] == KEEP_ALIVE_SECONDS
    assert seen["app"] == "xnai.server:app_from_environment" and seen["factory"] is True


def test_uvicorn_loads_the_given_protocol_class_not_httptools() -> None:
    config = uvicorn.Config(lambda scope: None, log_config=None, **uvicorn_options(Server()))
    config.load()
    assert issubclass(config.http_protocol_class, HeadDeadlineProtocol)
    assert config.http_protocol_class.header_timeout == 10.0
    assert config.limit_concurrency == 2048


@pytest.mark.parametrize(
    "server",
    [{"header_timeout_seconds": 0}, {"header_timeout_seconds": -1}, {"max_connections": 0}],
)
def test_the_server_limits_must_be_positive(server: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        load_settings(server=server)
    with pytest.raises(ValueError):
        head_deadline_protocol(0)


def test_the_open_files_limit_is_raised_never_lowered() -> None:
    limit = ensure_open_files(16)
    assert limit == -1 or limit >= 16
    assert ensure_open_files(0) == limit  # already enough: unchanged, never lowered


def test_a_websocket_outlives_the_head_deadline() -> None:
    """The chat's WebSocket is upgraded from HTTP: once its head is in, no deadline applies."""

    async def greet_late(ws: WebSocket) -> None:
        await ws.accept()
        await ws.receive_text()  # sent after the deadline
        await ws.send_text("hi")
        await ws.close()

    app = Starlette(routes=[WebSocketRoute("/ws", greet_late)])
    with serving(app, Server(header_timeout_seconds=0.3)) as server, connect(server) as sock:
        sock.sendall(
            b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        handshake = b""
        while b"\r\n\r\n" not in handshake:
            handshake += sock.recv(65536)
        assert handshake.startswith(b"HTTP/1.1 101 "), handshake
        time.sleep(1.0)  # over three deadlines
        mask = b"\x01\x02\x03\x04"
        sock.sendall(b"\x81\x82" + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(b"go")))
        frame = b""
        while len(frame) < 4:
            piece = sock.recv(65536)
            assert piece, "closed"
            frame += piece
    assert frame[:4] == b"\x81\x02hi"
