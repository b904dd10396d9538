"""A full disk over HTTP: 507 with the project's error body, and nothing half-done (no user
without its anchored audit event, no uploaded original or index folder left behind)."""

from __future__ import annotations

import errno
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.api.conftest import FAST_HASHER, bearer, seed, token_for
from tests.full_disk import fill, free, small_disk
from xnai.api.app import create_app
from xnai.api.errors import error_body, install, status_for
from xnai.bootstrap import Container
from xnai.domain.errors import AuditStorageFullError, StorageFullError
from xnai.domain.layout import DataLayout

NOTE = ("# Newts\n\n" + "The great crested newt breeds in garden ponds in spring. " * 400).encode()


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    yield from small_disk(tmp_path)


@pytest.fixture
def full(disk: Path, make_container: Callable[..., Container]) -> Iterator[TestClient]:
    """An admin's client of a server whose data directory is on a disk with no room left."""
    c = make_container(disk / "data")
    c.auth.hasher = FAST_HASHER
    seed(c)
    headers = bearer(token_for(c, "admin"))
    with TestClient(create_app(c, warm=False), headers=headers) as client:
        client.app.state.test_container = c  # type: ignore[attr-defined]
        fill(disk)
        yield client
        free(disk)


def _container(client: TestClient) -> Container:
    return client.app.state.test_container  # type: ignore[attr-defined,no-any-return]


def assert_507(response: object) -> str:
    assert response.status_code == 507, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"} and body["error"].startswith("the disk is full: ")
    assert "free disk space" in body["error"]
    return str(body["error"])


def audit_lines(c: Container) -> list[dict[str, object]]:
    text = (DataLayout(c.settings.data_dir).audit / "audit.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def test_creating_a_user_on_a_full_disk_is_507_and_creates_nobody(full: TestClient) -> None:
    c = _container(full)
    before = audit_lines(c)
    message = assert_507(full.post("/v1/users", json={"username": "bob", "role": "viewer"}))
    assert "nothing was changed" in message
    assert c.auth.repo.user_by_name("bob") is None
    # No line for a change that was not made, and the trail still verifies to its end.
    assert audit_lines(c) == before
    assert c.audit.verify().ok


def test_a_user_is_created_once_the_disk_has_room_again(full: TestClient, disk: Path) -> None:
    assert_507(full.post("/v1/users", json={"username": "bob", "role": "viewer"}))
    free(disk)
    created = full.post("/v1/users", json={"username": "bob", "role": "viewer"})
    assert created.status_code == 201, created.text
    assert created.json()["password"]
    c = _container(full)
    assert [e["resource"] for e in audit_lines(c) if e["event_type"] == "user_created"][-1] == (
        "user:bob"
    )
    assert c.audit.verify().ok


def test_an_upload_on_a_full_disk_is_507_and_leaves_nothing_behind(full: TestClient) -> None:
    c = _container(full)
    generation = c.kb.repo.current_generation()
    files = [("files", ("newts.md", NOTE, "text/markdown"))]
    assert_507(full.post("/v1/documents", files=files))
    layout = DataLayout(c.settings.data_dir)
    assert list(layout.originals.iterdir()) == []
    assert c.kb.repo.current_generation() == generation
    assert [p.name for p in layout.index.iterdir() if p.name.startswith(".tmp-")] == []
    assert all(d.source != "upload:newts.md" for d in c.kb.repo.documents())


def test_an_upload_whose_index_does_not_fit_leaves_no_generation_folder(
    full: TestClient, disk: Path
) -> None:
    c = _container(full)
    layout = DataLayout(c.settings.data_dir)
    folders = sorted(p.name for p in layout.index.iterdir())
    free(disk)
    fill(disk, leave=96 * 1024)  # room for the original and the audit, not the new index
    files = [("files", ("newts.md", NOTE, "text/markdown"))]
    assert "the index could not be written" in assert_507(full.post("/v1/documents", files=files))
    assert sorted(p.name for p in layout.index.iterdir()) == folders
    assert list(layout.originals.iterdir()) == []
    assert all(d.source != "upload:newts.md" for d in c.kb.repo.documents())


def test_the_storage_full_error_is_507_and_an_audit_trail_on_a_full_disk_too() -> None:
    assert status_for(StorageFullError("the disk is full: x")) == 507
    assert status_for(AuditStorageFullError("the disk is full: y")) == 507


def test_a_full_disk_met_outside_a_service_is_507_any_other_os_error_500() -> None:
    app = FastAPI()
    install(app)

    @app.get("/full")
    def _full() -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    @app.get("/quota")
    def _quota() -> None:
        raise OSError(errno.EDQUOT, "Disk quota exceeded")

    @app.get("/denied")
    def _denied() -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    with TestClient(app, raise_server_exceptions=False) as client:
        assert_507(client.get("/full"))
        assert_507(client.get("/quota"))
        denied = client.get("/denied")
        assert denied.status_code == 500 and denied.json() == error_body("internal error")
