"""The in-memory document repository and lexical index under the contracts of their ports."""

from __future__ import annotations

import pytest

from tests.contracts.lexical_index_contract import LexicalIndexContract, MakeIndex
from tests.contracts.repository_contract import RepositoryContract, doc
from xnai.adapters.memory import MemoryDocumentRepository, MemoryLexicalIndex
from xnai.domain.errors import ConflictError
from xnai.domain.ports import DocumentRepository


class TestMemoryRepositoryContract(RepositoryContract):
    @pytest.fixture
    def repo(self) -> DocumentRepository:
        return MemoryDocumentRepository()


class TestMemoryLexicalContract(LexicalIndexContract):
    @pytest.fixture
    def make_index(self) -> MakeIndex:
        return MemoryLexicalIndex


def test_documents_come_back_as_copies_with_their_stored_chunk_ids() -> None:
    repo = MemoryDocumentRepository()
    document, chunks = doc("a", "/a", "s" * 64, 2)
    repo.commit(1, [(document, list(reversed(chunks)))], [])
    found = repo.document("a")
    assert found is not None and found.chunk_ids == ("a-c0", "a-c1")
    found.versions["loader"] = "changed"
    assert repo.document("a") == document


def test_a_chunk_id_of_another_document_conflicts() -> None:
    repo = MemoryDocumentRepository()
    repo.commit(1, [doc("a", "/a", "s" * 64, 1)], [])
    other, _ = doc("b", "/b", "t" * 64, 0)
    with pytest.raises(ConflictError):
        repo.commit(2, [(other, doc("a", "/a", "s" * 64, 1)[1])], [])
    assert repo.current_generation() == 1
