"""The DocumentRepository contract, run against every SQL backend."""

from __future__ import annotations

import pytest

from xnai.domain.models import Chunk, Document
from xnai.domain.ports import DocumentRepository


def doc(doc_id: str, source: str, sha: str, n_chunks: int) -> tuple[Document, list[Chunk]]:
    chunks = [
        Chunk(f"{doc_id}-c{i}", doc_id, i, i * 10, i * 10 + 9, f"text {i} ünï", "H")
        for i in range(n_chunks)
    ]
    document = Document(
        doc_id,
        source,
        f"Title {doc_id}",
        sha,
        123,
        "text/plain",
        "2026-11-26T00:00:00+00:00",
        "tester",
        tuple(c.chunk_id for c in chunks),
        {"loader": "text/1"},
        "default",
    )
    return document, chunks


class RepositoryContract:
    """Subclass and provide a ``repo`` fixture."""

    @pytest.fixture
    def repo(self) -> DocumentRepository:
        raise NotImplementedError  # pragma: no cover - overridden by every subclass

    def test_names_its_backend_and_answers_a_ping(self, repo: DocumentRepository) -> None:
        assert repo.backend in {"memory", "sqlite", "postgresql"}
        repo.ping()

    def test_starts_empty_at_generation_zero(self, repo: DocumentRepository) -> None:
        assert repo.current_generation() == 0
        assert repo.documents() == [] and repo.chunks() == []

    def test_commit_inserts_with_generation(self, repo: DocumentRepository) -> None:
        a, b = doc("a", "/a", "s" * 64, 2), doc("b", "/b", "t" * 64, 1)
        repo.commit(1, [a, b], [])
        assert repo.current_generation() == 1
        assert [d.doc_id for d in repo.documents()] == ["a", "b"]
        assert repo.documents()[0] == a[0]
        assert [c.chunk_id for c in repo.chunks()] == ["a-c0", "a-c1", "b-c0"]
        assert repo.chunks()[0] == a[1][0]
        assert repo.document_by_source("/b") == b[0]
        assert repo.document_by_sha("s" * 64) == a[0]
        assert repo.document("zzz") is None

    def test_upsert_replaces_chunks_and_delete_removes(self, repo: DocumentRepository) -> None:
        repo.commit(1, [doc("a", "/a", "s" * 64, 3), doc("b", "/b", "t" * 64, 1)], [])
        repo.commit(2, [doc("a", "/a", "u" * 64, 1)], ["b"])
        assert repo.current_generation() == 2
        assert [d.doc_id for d in repo.documents()] == ["a"]
        assert [c.chunk_id for c in repo.chunks()] == ["a-c0"]
        assert repo.document("a").sha256 == "u" * 64  # type: ignore[union-attr]

    def test_a_failed_commit_changes_nothing(self, repo: DocumentRepository) -> None:
        repo.commit(1, [doc("a", "/a", "s" * 64, 1)], [])
        clash = doc("b", "/a", "t" * 64, 1)  # same source: violates uniqueness
        with pytest.raises(Exception):  # noqa: B017 - the driver's own error type
            repo.commit(2, [clash], [])
        assert repo.current_generation() == 1
        assert [d.doc_id for d in repo.documents()] == ["a"]
