"""Real Redis for tests: the shared server on 6379 (its own database), and private servers
started, killed and restarted on a free port to stage outages."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

SHARED_URL = "redis://127.0.0.1:6379/13"  # database 13 belongs to these tests
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def reachable(host: str = "127.0.0.1", port: int = 6379) -> bool:
    """Whether something answers PING on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def shared_available() -> bool:
    """Whether the shared Redis on 127.0.0.1:6379 runs."""
    return reachable()


def server_available() -> bool:
    """Whether a private redis-server can be started."""
    return Path(REDIS_SERVER).is_file()


def unique_namespace() -> str:
    """A key namespace no other test uses, so tests never see each other's keys."""
    return f"xnai-test-{uuid.uuid4().hex[:12]}"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A private ``redis-server`` on a loopback port, without persistence."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL of database 0 of this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it answers."""
        self.proc = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while not reachable(port=self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None
