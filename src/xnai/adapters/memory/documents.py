"""An in-memory ``DocumentRepository``: the reference for tests and throwaway runs."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from xnai.domain.errors import ConflictError
from xnai.domain.models import Chunk, Document


@dataclass(frozen=True, slots=True)
class _State:
    """One committed state, swapped whole by a commit so readers never see half of one."""

    generation: int = 0
    documents: dict[str, Document] = field(default_factory=dict)
    chunks: dict[str, tuple[Chunk, ...]] = field(default_factory=dict)


class MemoryDocumentRepository:
    """Documents and chunks in dicts; a commit builds the next state and swaps it in, so a
    failed commit (a taken source or chunk id) changes nothing."""

    name = "documents and chunks (memory)"

    def __init__(self) -> None:
        self._state = _State()
        self._lock = threading.Lock()

    def current_generation(self) -> int:
        """Committed generation (0 before the first commit)."""
        return self._state.generation

    def commit(
        self,
        generation: int,
        upserts: Sequence[tuple[Document, Sequence[Chunk]]],
        deletes: Sequence[str],
    ) -> None:
        """Replace documents and chunks and set the generation, all or nothing."""
        with self._lock:
            state = self._state
            gone = {*deletes, *(doc.doc_id for doc, _ in upserts)}
            docs = {k: v for k, v in state.documents.items() if k not in gone}
            chunks = {k: v for k, v in state.chunks.items() if k not in gone}
            for doc, doc_chunks in upserts:
                _check_unique(doc, doc_chunks, docs, chunks)
                ordered = tuple(sorted(doc_chunks, key=lambda c: c.ordinal))
                docs[doc.doc_id] = replace(doc, versions=dict(doc.versions))
                chunks[doc.doc_id] = ordered
            self._state = _State(generation, docs, chunks)

    def documents(self) -> list[Document]:
        """Every document, by source."""
        state = self._state
        found = sorted(state.documents.values(), key=lambda d: d.source)
        return [_with_chunks(d, state) for d in found]

    def document_by_source(self, source: str) -> Document | None:
        """The document ingested from ``source``."""
        return self._first(lambda d: d.source == source)

    def document_by_sha(self, sha256: str) -> Document | None:
        """A document with this content hash."""
        return self._first(lambda d: d.sha256 == sha256)

    def document(self, doc_id: str) -> Document | None:
        """A document by id."""
        state = self._state
        found = state.documents.get(doc_id)
        return _with_chunks(found, state) if found is not None else None

    def chunks(self) -> list[Chunk]:
        """Every chunk, by document id and ordinal."""
        state = self._state
        return [c for doc_id in sorted(state.chunks) for c in state.chunks[doc_id]]

    @property
    def backend(self) -> str:
        """The store's kind."""
        return "memory"

    def ping(self) -> None:
        """Always reachable."""

    def close(self) -> None:
        """Nothing to release."""

    def _first(self, match: Callable[[Document], bool]) -> Document | None:
        state = self._state
        found = next((d for d in state.documents.values() if match(d)), None)
        return _with_chunks(found, state) if found is not None else None


def _with_chunks(doc: Document, state: _State) -> Document:
    """The document with a fresh copy of its versions and its stored chunk ids."""
    ids = tuple(c.chunk_id for c in state.chunks.get(doc.doc_id, ()))
    return replace(doc, chunk_ids=ids, versions=dict(doc.versions))


def _check_unique(
    doc: Document,
    doc_chunks: Sequence[Chunk],
    docs: dict[str, Document],
    chunks: dict[str, tuple[Chunk, ...]],
) -> None:
    """ConflictError when the source or a chunk id already belongs to another document."""
    if doc.doc_id in docs or any(d.source == doc.source for d in docs.values()):
        raise ConflictError(f"a document from {doc.source!r} is already stored")
    taken = {c.chunk_id for cs in chunks.values() for c in cs}
    new = [c.chunk_id for c in doc_chunks]
    if len(set(new)) != len(new) or taken & set(new):
        raise ConflictError(f"chunk ids of {doc.doc_id!r} are already stored")
