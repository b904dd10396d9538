"""Erasure leaves no trace: not in the audit log, the database files, the operational log
or the collection grants, over the real stack."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import bearer, token_for
from xnai.bootstrap import Container
from xnai.domain.rbac import Principal, Role


def _upload(client: TestClient, headers: dict[str, str]) -> None:
    up = client.post(
        "/v1/documents",
        files={"files": ("notes.md", b"# Notes\n\nPangolin scales overlap.\n", "text/markdown")},
        headers=headers,
    )
    assert up.status_code == 201 and up.json()["added"], up.text


def _erase(client: TestClient, username: str) -> None:
    erased = client.post(f"/v1/admin/users/{username}/erase")
    assert erased.status_code == 200, erased.text


def test_erasure_pseudonymises_ingested_by(client: TestClient, seeded: Container) -> None:
    alice = bearer(token_for(seeded, "alice", Role.EDITOR))
    user_id = seeded.auth.repo.user_by_name("alice").user_id  # type: ignore[union-attr]
    _upload(client, alice)
    log = seeded.settings.data_dir / "audit" / "audit.jsonl"
    assert user_id in log.read_text(encoding="ascii")
    _erase(client, "alice")
    assert user_id not in log.read_text(encoding="ascii")
    assert client.get("/v1/admin/audit/verify").json()["ok"] is True


def test_erasure_leaves_no_user_row_in_wal(client: TestClient, seeded: Container) -> None:
    name = "zanzibar-quokka"
    headers = bearer(token_for(seeded, name, Role.EDITOR))
    key = client.post("/v1/auth/api-keys", json={"name": "laptop"}, headers=headers)
    assert key.status_code in (200, 201), key.text
    user = seeded.auth.repo.user_by_name(name)
    assert user is not None
    secrets = [name.encode(), user.password_hash.encode(), user.user_id.encode()]
    secrets += [k.secret_hash.encode() for k in seeded.auth.repo.api_keys(user.user_id)]
    db = seeded.settings.data_dir / "xnai.db"
    wal = db.with_name("xnai.db-wal")
    files = (db, wal)
    assert any(s in p.read_bytes() for p in files if p.exists() for s in secrets)
    _erase(client, name)
    for path in files:
        if path.exists():
            data = path.read_bytes()
            assert not [s for s in secrets if s in data], path.name


def test_logged_paths_hold_no_usernames(
    client: TestClient, seeded: Container, caplog: pytest.LogCaptureFixture
) -> None:
    token_for(seeded, "walrus-kim", Role.VIEWER)
    with caplog.at_level(logging.DEBUG):
        assert client.get("/v1/admin/users/walrus-kim/export").status_code == 200
        assert client.get("/v1/users/walrus-kim").status_code in (200, 404)
        _erase(client, "walrus-kim")
        assert client.get("/v1/admin/users/walrus-kim/export").status_code == 404
    logged = [r for r in caplog.records if r.name.startswith("xnai")]
    assert any(getattr(r, "path", None) for r in logged)  # access lines were captured
    for record in logged:
        text = record.getMessage() + repr(vars(record))
        assert "walrus-kim" not in text, text


def test_new_account_with_erased_name_inherits_no_grants(
    client: TestClient, seeded: Container
) -> None:
    token_for(seeded, "heron", Role.VIEWER)
    old_id = seeded.auth.repo.user_by_name("heron").user_id  # type: ignore[union-attr]
    assert client.post("/v1/collections", json={"name": "secret"}).status_code == 201
    granted = client.post("/v1/collections/secret/grant", json={"users": ["heron"]})
    assert granted.status_code == 200, granted.text
    assert granted.json()["collection"]["readable_users"] == [old_id]  # by id, not by name
    _erase(client, "heron")
    stored = seeded.access.store.get("secret")
    assert stored is not None and stored.readable_users == ()
    heron = bearer(token_for(seeded, "heron", Role.VIEWER))  # a new person, the same name
    names = [c["name"] for c in client.get("/v1/collections", headers=heron).json()["collections"]]
    assert "secret" not in names


def test_a_grant_to_an_unknown_user_is_refused(client: TestClient) -> None:
    assert client.post("/v1/collections", json={"name": "secret"}).status_code == 201
    refused = client.post("/v1/collections/secret/grant", json={"users": ["nobody-yet"]})
    assert refused.status_code == 404 and "nobody-yet" in refused.json()["error"]


def test_a_name_left_in_a_grant_never_admits_a_namesake(seeded: Container) -> None:
    from xnai.domain.access import Collection

    seeded.access.store.create(Collection("legacy", readable_users=("otter",)))
    otter = Principal(user_id="u-new-otter", username="otter", role=Role.VIEWER)
    assert not seeded.access.can_read(otter, "legacy")
