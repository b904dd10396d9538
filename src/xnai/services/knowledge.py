"""The knowledge base: ingest, remove and crash-safe commits of index generations.

Commit protocol (one writer at a time, under the store's lock):
1. write the new generation into a temp directory, fsync it, rename it into place;
2. commit the database rows and the generation number in one transaction (the commit point);
3. point ``CURRENT`` at it and rewrite the manifest (both derived, rolled forward by recovery);
4. delete generations nobody needs.
A crash before 2 leaves an unreferenced directory that recovery deletes; a crash after 2
leaves a pointer or manifest behind that recovery rewrites from the database.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from xnai.domain.errors import NotFoundError, XnaiError
from xnai.domain.limits import MAX_TITLE_CHARS
from xnai.domain.models import Chunk, Document, IngestReport
from xnai.domain.ports import DocumentRepository, Embedder, IndexStore, LexicalIndex, VectorIndex
from xnai.services.chunking import CHUNKER_VERSION, chunk_text

MANIFEST_VERSION = 1


@dataclass(frozen=True, slots=True)
class Source:
    """One document to ingest: its identity, raw bytes and extracted text."""

    source: str
    sha256: str
    size: int
    title: str
    text: str
    mime: str
    loader: str
    loader_version: str
    collection: str = "default"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """An immutable view of one committed generation for readers."""

    generation: int
    vectors: VectorIndex
    lexical: LexicalIndex
    chunks: dict[str, Chunk]
    documents: dict[str, Document]


@dataclass(slots=True)
class _Pending:
    """Changes waiting for the next commit."""

    upserts: list[tuple[Document, list[Chunk]]] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    stale_chunk_ids: set[str] = field(default_factory=set)  # of replaced or deleted docs
    chunk_count: int = 0


@dataclass(slots=True)
class _RunState:
    """What one ingest run knows: the committed documents and what it planned so far."""

    by_source: dict[str, Document]
    # (collection, sha256) -> source: duplicates are refused within one collection only,
    # so an upload never learns what another collection holds.
    source_by_sha: dict[tuple[str, str], str]
    planned: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class ChunkingPolicy:
    """How documents are cut into chunks."""

    max_tokens: int = 200
    overlap: int = 40


Progress = Callable[[int], None]


class KnowledgeBase:
    """Owns the committed state and every change to it."""

    def __init__(
        self,
        repo: DocumentRepository,
        store: IndexStore,
        embedder: Embedder,
        new_vector_index: Callable[[], VectorIndex],
        new_lexical_index: Callable[[], LexicalIndex],
        *,
        chunking: ChunkingPolicy = ChunkingPolicy(),
        commit_every_chunks: int = 2000,
        keep_generations: int = 2,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.repo = repo
        self.store = store
        self.embedder = embedder
        self._new_vectors = new_vector_index
        self._new_lexical = new_lexical_index
        self.chunking = chunking
        self.commit_every_chunks = commit_every_chunks
        self.keep_generations = keep_generations
        self._clock = clock
        self._snapshot: Snapshot | None = None
        self._stamp: tuple[int, int] | None = None
        self._reload_lock = threading.Lock()

    # -- reading -------------------------------------------------------------------------

    def open(self) -> Snapshot:
        """Recover from any interrupted commit, then load the committed generation.

        When another process holds the writer lock it is mid-commit and owns recovery, so
        readers do not wait for it.
        """
        with self.store.try_lock() as acquired:
            if acquired:
                self._recover_locked()
        return self.refresh(force=True)

    @property
    def snapshot(self) -> Snapshot:
        """The current view, reloaded when another process committed a new generation."""
        return self.refresh()

    def refresh(self, force: bool = False) -> Snapshot:
        """Reload when the pointer changed on disk (cheap stat otherwise)."""
        stamp = self.store.pointer_stamp()
        snap = self._snapshot
        if snap is not None and not force and stamp == self._stamp:
            return snap
        with self._reload_lock:
            if self._snapshot is not None and not force and stamp == self._stamp:
                return self._snapshot
            self._stamp = stamp
            self._snapshot = self._load_consistent()
            return self._snapshot

    def _load_consistent(self, attempts: int = 5) -> Snapshot:
        # Files and rows are read separately: a commit in between is detected by the
        # generation number changing (or its directory vanishing), and the load is retried.
        for _ in range(attempts):
            generation = self.repo.current_generation()
            try:
                snap = self._load(generation)
            except FileNotFoundError:
                continue
            if self.repo.current_generation() == generation:
                return snap
        raise XnaiError("the index kept changing while it was being loaded; try again")

    def _load(self, generation: int) -> Snapshot:
        vectors, lexical = self._new_vectors(), self._new_lexical()
        if generation:
            directory = self.store.generation_dir(generation)
            vectors.load(directory)
            lexical.load(directory)
        chunks = {c.chunk_id: c for c in self.repo.chunks()}
        documents = {d.doc_id: d for d in self.repo.documents()}
        return Snapshot(generation, vectors, lexical, chunks, documents)

    # -- recovery ------------------------------------------------------------------------

    def _recover_locked(self) -> list[Path]:
        generation = self.repo.current_generation()
        if generation and generation not in self.store.generations():
            raise XnaiError(
                f"index generation {generation} is recorded in the database but missing on "
                f"disk under {self.store.generation_dir(generation)}; restore it from backup "
                "or re-ingest into a new data directory"
            )
        if generation and self.store.read_pointer() != generation:
            self.store.set_pointer(generation)
        manifest = self.manifest()
        if self.store.read_manifest() != manifest:
            self.store.write_manifest(manifest)
        return self.store.cleanup(self._kept(generation))

    def _kept(self, generation: int) -> set[int]:
        return {g for g in range(generation - self.keep_generations + 1, generation + 1) if g > 0}

    def is_unchanged(self, source: str, sha256: str) -> bool:
        """True when ``source`` is committed with exactly this content."""
        doc = self.repo.document_by_source(source)
        return doc is not None and doc.sha256 == sha256

    def manifest(self) -> dict[str, Any]:
        """The provenance record of every committed document, derived from the database."""
        docs = {d.doc_id: _manifest_entry(d) for d in self.repo.documents()}
        return {
            "manifest_version": MANIFEST_VERSION,
            "generation": self.repo.current_generation(),
            "documents": docs,
        }

    # -- writing -------------------------------------------------------------------------

    def ingest(
        self,
        sources: Iterable[Source | tuple[str, Exception]],
        *,
        user: str = "system",
        progress: Progress | None = None,
    ) -> IngestReport:
        """Add new, replace changed and skip unchanged sources; failures are per source."""
        with self.store.lock():
            self._recover_locked()
            return self._ingest_locked(sources, user, progress)

    def _ingest_locked(
        self,
        sources: Iterable[Source | tuple[str, Exception]],
        user: str,
        progress: Progress | None,
    ) -> IngestReport:
        acc: dict[str, list[Any]] = {"added": [], "replaced": [], "unchanged": [], "failed": []}
        pending, chunks_added, generation = _Pending(), 0, self.repo.current_generation()
        # One query up front instead of two per source.
        committed = self.repo.documents()
        run = _RunState(
            {d.source: d for d in committed},
            {(d.collection, d.sha256): d.source for d in committed},
        )
        for item in sources:
            if isinstance(item, tuple):
                acc["failed"].append((item[0], str(item[1])))
                _tick(progress)
                continue
            verdict = self._plan(item, user, pending, run)
            acc[verdict[0]].append(verdict[1] if verdict[0] == "failed" else item.source)
            if pending.chunk_count >= self.commit_every_chunks:
                chunks_added += pending.chunk_count
                generation = self._commit(pending)
                pending = _Pending()
            _tick(progress)
        if pending.upserts or pending.deletes:
            chunks_added += pending.chunk_count
            generation = self._commit(pending)
        return IngestReport(
            added=tuple(acc["added"]),
            replaced=tuple(acc["replaced"]),
            unchanged=tuple(acc["unchanged"]),
            failed=tuple(acc["failed"]),
            chunks_added=chunks_added,
            generation=generation,
        )

    def _plan(self, src: Source, user: str, pending: _Pending, run: _RunState) -> tuple[str, Any]:
        old = run.by_source.get(src.source)
        if src.source in run.planned or (old is not None and old.sha256 == src.sha256):
            return ("unchanged", None)
        twin = run.source_by_sha.get((src.collection, src.sha256))
        if twin is not None and twin != src.source:
            return ("failed", (src.source, f"duplicate content of {twin} (same sha256)"))
        doc, chunks = self._build(src, user)
        if not chunks:
            return ("failed", (src.source, "no text to index after chunking"))
        run.planned.add(src.source)
        run.source_by_sha[(src.collection, src.sha256)] = src.source
        pending.upserts.append((doc, chunks))
        pending.chunk_count += len(chunks)
        if old is not None:
            pending.stale_chunk_ids.update(old.chunk_ids)
        return ("replaced" if old is not None else "added", None)

    def _build(self, src: Source, user: str) -> tuple[Document, list[Chunk]]:
        doc_id = "d_" + _hex(src.source)[:20]
        spans = chunk_text(
            src.text,
            self.embedder,
            max_tokens=self.chunking.max_tokens,
            overlap=self.chunking.overlap,
        )
        chunks = [
            Chunk(
                chunk_id="c_" + _hex(f"{doc_id}|{src.sha256}|{s.ordinal}")[:24],
                doc_id=doc_id,
                ordinal=s.ordinal,
                start=s.start,
                end=s.end,
                text=s.text,
                heading=s.heading,
            )
            for s in spans
        ]
        doc = Document(
            doc_id=doc_id,
            source=src.source,
            title=short_title(src.title),
            sha256=src.sha256,
            size=src.size,
            mime=src.mime,
            ingested_at=self._clock().isoformat(timespec="seconds"),
            ingested_by=user,
            chunk_ids=tuple(c.chunk_id for c in chunks),
            versions={
                "loader": f"{src.loader}/{src.loader_version}",
                "chunker": CHUNKER_VERSION,
                "embedder": f"{self.embedder.name}/{self.embedder.version}",
            },
            collection=src.collection,
        )
        return doc, chunks

    def find(self, ref: str) -> Document | None:
        """The committed document whose id or source is ``ref``; None when unknown."""
        return self.repo.document(ref) or self.repo.document_by_source(ref)

    @property
    def database(self) -> str:
        """The kind of database that holds the library (``sqlite``, ``postgresql``, ...)."""
        return self.repo.backend

    def ping_database(self) -> None:
        """Raise unless the library's database answers now."""
        self.repo.ping()

    def remove(self, ref: str) -> Document:
        """Delete one document (by id or source) from every index; raise NotFoundError."""
        with self.store.lock():
            self._recover_locked()
            doc = self.find(ref)
            if doc is None:
                raise NotFoundError(f"no document with id or source {ref!r}")
            pending = _Pending(deletes=[doc.doc_id], stale_chunk_ids=set(doc.chunk_ids))
            self._commit(pending)
            return doc

    def remove_many(self, doc_ids: Iterable[str]) -> list[Document]:
        """Delete these documents (unknown ids ignored) in one commit; return those removed."""
        with self.store.lock():
            self._recover_locked()
            docs = [d for d in (self.repo.document(i) for i in dict.fromkeys(doc_ids)) if d]
            if docs:
                stale = {c for d in docs for c in d.chunk_ids}
                self._commit(_Pending(deletes=[d.doc_id for d in docs], stale_chunk_ids=stale))
            return docs

    def _commit(self, pending: _Pending) -> int:
        base = self.repo.current_generation()
        vectors, lexical = self._new_vectors(), self._new_lexical()
        if base:
            vectors.load(self.store.generation_dir(base))
            lexical.load(self.store.generation_dir(base))
        vectors.remove(pending.stale_chunk_ids)
        lexical.remove(pending.stale_chunk_ids)
        new_chunks = [c for _, cs in pending.upserts for c in cs]
        if new_chunks:
            ids = [c.chunk_id for c in new_chunks]
            vectors.add(ids, self.embedder.embed([_embed_text(c) for c in new_chunks]))
            lexical.add(ids, [c.text for c in new_chunks])
        generation = base + 1
        staged = self.store.stage(generation)
        vectors.save(staged)
        lexical.save(staged)
        info = {"generation": generation, "chunks": len(vectors), "created_at": _now()}
        (staged / "generation.json").write_text(json.dumps(info), encoding="utf-8")
        self.store.publish(staged, generation)
        self.repo.commit(generation, pending.upserts, pending.deletes)  # the commit point
        self.store.set_pointer(generation)
        self.store.write_manifest(self.manifest())
        self.store.cleanup(self._kept(generation))
        self._snapshot = None
        return generation


def _embed_text(chunk: Chunk) -> str:
    # The heading path gives a chunk cut from deep inside a section its topic.
    return f"{chunk.heading}\n{chunk.text}" if chunk.heading else chunk.text


def _manifest_entry(doc: Document) -> dict[str, Any]:
    entry = asdict(doc)
    del entry["doc_id"]  # the key of the entry
    entry["chunk_ids"] = list(doc.chunk_ids)  # JSON has lists, not tuples
    return entry


def _hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _tick(progress: Progress | None) -> None:
    if progress is not None:
        progress(1)


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def find_documents(paths: Sequence[Path], suffixes: Sequence[str]) -> list[Path]:
    """Expand folders recursively (hidden entries skipped); explicit files are kept as given."""
    wanted = {s.lower() for s in suffixes}
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and p.suffix.lower() in wanted
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        else:
            out.append(path)
    return out


def short_title(title: str) -> str:
    """``title`` cut to ``MAX_TITLE_CHARS`` (a title is a label, not text to search)."""
    return title if len(title) <= MAX_TITLE_CHARS else title[: MAX_TITLE_CHARS - 1] + "…"
