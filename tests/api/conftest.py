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

from xnai.adapters.security.passwords import Argon2Hasher
from xnai.api.app import create_app
from xnai.bootstrap import Container
from xnai.domain.rbac import LOCAL_ADMIN, Role
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


# Real argon2id with the smallest cost, so tests that sign in many users stay quick.
FAST_HASHER = Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1)


def password_of(username: str) -> str:
    """The password ``token_for`` gives the users it creates."""
    return f"correct horse battery staple {username}"


def token_for(c: Container, username: str, role: Role = Role.ADMIN) -> str:
    """A session token of ``username``, created with ``role`` when missing."""
    if c.auth.repo.user_by_name(username) is None:
        c.auth.create_user(LOCAL_ADMIN, username, role, password_of(username))
    return c.auth.login(username, password_of(username)).token


def bearer(token: str) -> dict[str, str]:
    """The Authorization header of a token or API key."""
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def seeded(container: Container) -> Container:
    container.auth.hasher = FAST_HASHER
    seed(container)
    return container


@pytest.fixture
def client(seeded: Container) -> Iterator[TestClient]:
    """A client signed in as an admin (its default Authorization header)."""
    headers = bearer(token_for(seeded, "admin"))
    with TestClient(create_app(seeded, warm=False), headers=headers) as tc:
        yield tc


@pytest.fixture
def anonymous(seeded: Container) -> Iterator[TestClient]:
    """A client without credentials."""
    with TestClient(create_app(seeded, warm=False)) as tc:
        yield tc


@pytest.fixture
def api_key(seeded: Container) -> str:
    """An API key of an admin, for programs such as the OpenAI client."""
    principal = seeded.auth.authenticate(token_for(seeded, "admin")).principal
    return seeded.auth.create_api_key(principal, "tests")[1]


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
