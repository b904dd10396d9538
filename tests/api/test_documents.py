"""Listing, uploading and deleting documents over HTTP."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.fixtures_docs import minimal_pdf


def test_list_documents(client: TestClient) -> None:
    body = client.get("/v1/documents").json()
    assert body["generation"] == 1
    assert [d["source"] for d in body["documents"]] == ["/library/policy.md", "/library/reactor.md"]


def test_upload_ingests_each_file_and_reports_failures(client: TestClient) -> None:
    files = [
        ("files", ("memo.md", b"# Memo\n\nThe canteen opens at 7 am.\n", "text/markdown")),
        ("files", ("report.pdf", minimal_pdf("Sales rose nine percent."), "application/pdf")),
        ("files", ("broken.pdf", b"%PDF-1.4 garbage", "application/pdf")),
        ("files", ("../../etc/evil.txt", b"", "text/plain")),
    ]
    r = client.post("/v1/documents", files=files)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["added"] == ["upload:memo.md", "upload:report.pdf"]
    failed = {f["source"]: f["error"] for f in body["failed"]}
    assert set(failed) == {"upload:broken.pdf", "upload:evil.txt"}
    assert failed["upload:evil.txt"] == "empty file"
    r = client.post(
        "/v1/query",
        json={"query": "When does the canteen open?", "mode": "lexical", "generate": False},
    )
    assert r.json()["sources"][0]["source"] == "upload:memo.md"
    again = client.post("/v1/documents", files=files[:1]).json()
    assert again["unchanged"] == ["upload:memo.md"]


def test_delete_document(client: TestClient) -> None:
    doc = client.get("/v1/documents").json()["documents"][0]
    r = client.delete(f"/v1/documents/{doc['doc_id']}")
    assert r.status_code == 200
    assert r.json()["deleted"]["doc_id"] == doc["doc_id"]
    assert client.delete(f"/v1/documents/{doc['doc_id']}").status_code == 404
    assert len(client.get("/v1/documents").json()["documents"]) == 1
