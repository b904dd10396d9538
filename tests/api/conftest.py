"""API fixtures: the real app over a fake-backed container, in-process or on a real port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from xnai.api.app import create_app
from xnai.bootstrap import Container
from xnai.services.knowledge import Source, sha256_bytes

DOCS = {
    "reactor.md": "# Reactor\n\nThe coolant pump of reactor seven runs at 1450 rpm.\n",
    "policy.md": "# Travel policy\n\nEmployees book economy class for flights under six hours.\n",
}


def seed(c: Container) -> None:
    sources = []
    for name, text in DOCS.items():
        data = text.encode()
        sources.append(
            Source(
                f"/library/{name}",
                sha256_bytes(data),
                len(data),
                name.removesuffix(".md").title(),
                text,
                "text/markdown",
                "test",
                "1",
            )
        )
    c.kb.ingest(sources, user="tester")


@pytest.fixture
def seeded(container: Container) -> Container:
    seed(container)
    return container


@pytest.fixture
def client(seeded: Container) -> Iterator[TestClient]:
    with TestClient(create_app(seeded, warm=False)) as tc:
        yield tc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live_url(seeded: Container) -> Iterator[str]:
    """The app served by uvicorn on a free loopback port."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(seeded), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    yield url
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def sample_dir(tmp_path: Path) -> Path:
    d = tmp_path / "sample"
    d.mkdir()
    for name, text in DOCS.items():
        (d / name).write_text(text)
    return d
