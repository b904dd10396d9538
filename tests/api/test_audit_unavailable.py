"""Over HTTP, a privileged request is answered 503 with a clear error, and changes nothing,
while the audit trail cannot be written."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.broken_audit import unwritable
from xnai.bootstrap import Container
from xnai.domain.layout import DataLayout

PASSWORD = "correct horse battery staple bob"


@pytest.fixture
def audit_dir(seeded: Container) -> DataLayout:
    return DataLayout(seeded.settings.data_dir)


def assert_503(response: object) -> None:
    assert response.status_code == 503, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["error"].startswith("the audit trail cannot be written")
    assert "nothing was changed" in body["error"]
    assert response.headers["Retry-After"]  # type: ignore[attr-defined]


def test_privileged_requests_get_503_and_change_nothing_when_audit_cannot_be_written(
    client: TestClient, seeded: Container, audit_dir: DataLayout
) -> None:
    doc = next(iter(seeded.kb.snapshot.documents.values()))
    carol = {"username": "carol", "password": PASSWORD}
    assert client.post("/v1/users", json=carol).status_code == 201  # grants name accounts
    grants = seeded.access.store.get("default")
    with unwritable(audit_dir.audit):
        assert_503(client.post("/v1/users", json={"username": "bob", "password": PASSWORD}))
        assert_503(client.post("/v1/collections/default/grant", json={"users": ["carol"]}))
        assert_503(client.delete(f"/v1/documents/{doc.doc_id}"))
        assert client.get("/health").status_code == 200
    assert seeded.auth.repo.user_by_name("bob") is None
    assert seeded.access.store.get("default") == grants
    assert seeded.kb.find(doc.doc_id) is not None
    # With the trail back, the same requests succeed.
    assert (
        client.post("/v1/users", json={"username": "bob", "password": PASSWORD}).status_code == 201
    )
    assert client.delete(f"/v1/documents/{doc.doc_id}").status_code == 200
