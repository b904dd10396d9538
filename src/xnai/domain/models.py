"""Value types shared by every layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class SearchMode(StrEnum):
    """How retrieval ranks chunks."""

    DENSE = "dense"
    LEXICAL = "lexical"
    HYBRID = "hybrid"


@dataclass(frozen=True, slots=True)
class LoadedDocument:
    """Normalised text and metadata produced by a loader."""

    text: str
    title: str
    mime: str
    loader: str
    loader_version: str
    encoding: str | None = None


@dataclass(frozen=True, slots=True)
class ChunkSpan:
    """A piece of a document's text, located by character offsets."""

    ordinal: int
    start: int
    end: int
    text: str
    heading: str = ""


@dataclass(frozen=True, slots=True)
class Document:
    """One ingested source, as recorded in the database and the manifest."""

    doc_id: str
    source: str
    title: str
    sha256: str
    size: int
    mime: str
    ingested_at: str
    ingested_by: str
    chunk_ids: tuple[str, ...]
    versions: dict[str, str] = field(default_factory=dict)
    collection: str = "default"

    def summary(self) -> dict[str, Any]:
        """Plain JSON-ready form for listings and exports (chunks as a count)."""
        return {
            "doc_id": self.doc_id,
            "title": self.title,
            "source": self.source,
            "sha256": self.sha256,
            "size": self.size,
            "mime": self.mime,
            "ingested_at": self.ingested_at,
            "ingested_by": self.ingested_by,
            "chunks": len(self.chunk_ids),
            "collection": self.collection,
        }


@dataclass(frozen=True, slots=True)
class Chunk:
    """A retrievable unit of text and where it came from."""

    chunk_id: str
    doc_id: str
    ordinal: int
    start: int
    end: int
    text: str
    heading: str = ""


@dataclass(frozen=True, slots=True)
class Hit:
    """A chunk returned by retrieval with its score (higher is better)."""

    chunk: Chunk
    score: float
    title: str = ""
    source: str = ""
    dense_rank: int | None = None
    lexical_rank: int | None = None
    dense_score: float | None = None


@dataclass(frozen=True, slots=True)
class Citation:
    """A numbered reference from an answer to an exact span of a source."""

    number: int
    doc_id: str
    chunk_id: str
    title: str
    source: str
    start: int
    end: int
    score: float
    text: str

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return {
            "number": self.number,
            "doc_id": self.doc_id,
            "chunk_id": self.chunk_id,
            "title": self.title,
            "source": self.source,
            "span": [self.start, self.end],
            "score": round(self.score, 6),
            "text": self.text,
        }


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of a chat conversation."""

    role: str
    content: str


@dataclass(frozen=True, slots=True)
class Answer:
    """A generated answer with its citations and timings."""

    text: str
    citations: tuple[Citation, ...]
    model: str
    retrieval_ms: float
    generation_ms: float
    grounded: bool = True
    usage: dict[str, int] = field(default_factory=dict)
    answer_id: str = ""  # the id of its signed bundle; "" until one is kept


@dataclass(frozen=True, slots=True)
class IngestReport:
    """What one ingest run did, per file."""

    added: tuple[str, ...] = ()
    replaced: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    failed: tuple[tuple[str, str], ...] = ()
    chunks_added: int = 0
    generation: int = 0

    @property
    def ok(self) -> bool:
        """True when no file failed."""
        return not self.failed
