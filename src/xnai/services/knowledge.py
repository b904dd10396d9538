"""The knowledge base: ingest, remove and crash-safe commits of index generations.

Commit protocol (one writer at a time, under the store's lock):
1. write the new generation into a temp directory, fsync it, rename it into place;
2. commit the database rows and the generation number in one transaction (the commit point),
   after the caller's guard (the audit event of the commit) was entered;
3. point ``CURRENT`` at it and rewrite the manifest (both derived, rolled forward by recovery);
4. delete generations nobody needs.
A crash before 2 leaves an unreferenced directory that recovery deletes; a crash after 2
leaves a pointer or manifest behind that recovery rewrites from the database.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from xnai.domain.errors import (
    REBUILD_HINT,
    IndexDamagedError,
    IntegrityError,
    NotFoundError,
    XnaiError,
)
from xnai.domain.limits import MAX_TITLE_CHARS
from xnai.domain.models import Chunk, Document, IngestReport
from xnai.domain.ports import DocumentRepository, Embedder, IndexStore, LexicalIndex, VectorIndex
from xnai.services.chunking import CHUNKER_VERSION, chunk_text
from xnai.services.disk import is_disk_full, refused_when_full

log = logging.getLogger("xnai.knowledge")

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


@dataclass(frozen=True, slots=True)
class CommitPlan:
    """What one commit is about to make current: its generation, the documents it writes
    (new, or replacing the older version of the same source) and those it deletes."""

    generation: int
    added: tuple[Document, ...] = ()
    replaced: tuple[Document, ...] = ()
    removed: tuple[Document, ...] = ()
    chunks_added: int = 0


# Entered just before a commit's database transaction and left after it: raising on entry
# refuses the commit (nothing changes); an error inside is the commit failing.
CommitGuard = Callable[[CommitPlan], AbstractContextManager[object]]


def _unguarded(_plan: CommitPlan) -> AbstractContextManager[object]:
    return nullcontext()


@dataclass(slots=True)
class _Pending:
    """Changes waiting for the next commit."""

    upserts: list[tuple[Document, list[Chunk]]] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    stale_chunk_ids: set[str] = field(default_factory=set)  # of replaced or deleted docs
    chunk_count: int = 0
    replacing: set[str] = field(default_factory=set)  # doc ids of upserts with an old version
    removed: list[Document] = field(default_factory=list)

    def plan(self, generation: int) -> CommitPlan:
        """What committing these changes as ``generation`` does."""
        written = [d for d, _ in self.upserts]
        return CommitPlan(
            generation,
            added=tuple(d for d in written if d.doc_id not in self.replacing),
            replaced=tuple(d for d in written if d.doc_id in self.replacing),
            removed=tuple(self.removed),
            chunks_added=self.chunk_count,
        )


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
        # The damage found at the last load, until the pointer changes (a rebuild or an
        # ingest): queries are refused at once instead of re-reading the files each time.
        self._damage: IndexDamagedError | None = None
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
        if not force and stamp == self._stamp:
            if snap is not None:
                return snap
            if self._damage is not None:
                raise self._damage
        with self._reload_lock:
            if not force and stamp == self._stamp:
                if self._snapshot is not None:
                    return self._snapshot
                if self._damage is not None:
                    raise self._damage
            self._stamp, self._snapshot, self._damage = stamp, None, None
            try:
                self._snapshot = self._load_consistent()
            except IndexDamagedError as exc:
                self._damage = exc
                raise
            return self._snapshot

    def _load_consistent(self, attempts: int = 5) -> Snapshot:
        # Files and rows are read separately: a commit in between is detected by the
        # generation number changing (or its directory vanishing), and the load is retried.
        # Damage found while the generation stayed the same is real.
        for _ in range(attempts):
            generation = self.repo.current_generation()
            try:
                snap = self._load(generation)
            except (FileNotFoundError, IndexDamagedError) as exc:
                if self.repo.current_generation() != generation:
                    continue
                raise _as_damage(generation, exc) from None
            if self.repo.current_generation() == generation:
                return snap
        raise XnaiError("the index kept changing while it was being loaded; try again")

    def _load(self, generation: int) -> Snapshot:
        vectors, lexical = self._new_vectors(), self._new_lexical()
        if generation:
            self._load_files(generation, vectors, lexical)
        chunks = {c.chunk_id: c for c in self.repo.chunks()}
        documents = {d.doc_id: d for d in self.repo.documents()}
        snap = Snapshot(generation, vectors, lexical, chunks, documents)
        disagreement = disagreement_with_database(snap)
        if disagreement:
            raise _damaged(generation, disagreement)
        return snap

    def _load_files(self, generation: int, vectors: VectorIndex, lexical: LexicalIndex) -> None:
        """Check the recorded sha256 of every file, then load both indexes."""
        problems = self.store.damage(generation)
        if problems:
            raise _damaged(generation, "; ".join(problems))
        directory = self.store.generation_dir(generation)
        try:
            vectors.load(directory)
            lexical.load(directory)
        except FileNotFoundError:
            raise
        except (ValueError, KeyError, OSError, RuntimeError, IntegrityError) as exc:
            raise _damaged(generation, str(exc)) from None

    # -- recovery ------------------------------------------------------------------------

    def _recover_locked(self) -> list[Path]:
        generation = self.repo.current_generation()
        if generation and generation not in self.store.generations():
            raise IndexDamagedError(
                f"index generation {generation} is recorded in the database but missing on "
                f"disk under {self.store.generation_dir(generation)}; restore it from backup, "
                f"or {REBUILD_HINT}"
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
        guard: CommitGuard = _unguarded,
    ) -> IngestReport:
        """Add new, replace changed and skip unchanged sources; failures are per source.
        Changes are committed in batches of about ``commit_every_chunks`` chunks, each
        under ``guard``: a run stopped part way keeps (and has guarded) whole batches."""
        with refused_when_full(NOT_INGESTED), self.store.lock():
            self._recover_locked()
            return self._ingest_locked(sources, user, progress, guard)

    def _ingest_locked(
        self,
        sources: Iterable[Source | tuple[str, Exception]],
        user: str,
        progress: Progress | None,
        guard: CommitGuard,
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
                generation = self._commit(pending, guard)
                pending = _Pending()
            _tick(progress)
        if pending.upserts or pending.deletes:
            chunks_added += pending.chunk_count
            generation = self._commit(pending, guard)
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
            pending.replacing.add(doc.doc_id)
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

    def remove(self, ref: str, *, guard: CommitGuard = _unguarded) -> Document:
        """Delete one document (by id or source) from every index, in one commit under
        ``guard``; raise NotFoundError."""
        with refused_when_full("the document was not removed"), self.store.lock():
            self._recover_locked()
            doc = self.find(ref)
            if doc is None:
                raise NotFoundError(f"no document with id or source {ref!r}")
            self._commit(_removal([doc]), guard)
            return doc

    def remove_many(
        self, doc_ids: Iterable[str], *, guard: CommitGuard = _unguarded
    ) -> list[Document]:
        """Delete these documents (unknown ids ignored) in one commit under ``guard``;
        return those removed."""
        with refused_when_full("the documents were not removed"), self.store.lock():
            self._recover_locked()
            docs = [d for d in (self.repo.document(i) for i in dict.fromkeys(doc_ids)) if d]
            if docs:
                self._commit(_removal(docs), guard)
            return docs

    def rebuild(
        self,
        progress: Progress | None = None,
        batch: int = 256,
        *,
        guard: CommitGuard = _unguarded,
    ) -> int:
        """Write a new generation from the chunk texts in the database, re-embedding them:
        the cure for damaged or missing index files. Returns the new generation."""
        with refused_when_full("the index was not rebuilt"), self.store.lock():
            self.store.cleanup(self._kept(self.repo.current_generation()))
            chunks = {c.chunk_id: c for c in self.repo.chunks()}
            ordered = [
                chunks[cid] for d in self.repo.documents() for cid in d.chunk_ids if cid in chunks
            ]
            vectors, lexical = self._new_vectors(), self._new_lexical()
            for start in range(0, len(ordered), batch):
                part = ordered[start : start + batch]
                self._add(vectors, lexical, part)
                if progress is not None:
                    progress(len(part))
            return self._publish(vectors, lexical, _Pending(), guard)

    def _commit(self, pending: _Pending, guard: CommitGuard) -> int:
        base = self.repo.current_generation()
        vectors, lexical = self._new_vectors(), self._new_lexical()
        if base:
            # A damaged base is never carried into the next generation.
            self._load_files(base, vectors, lexical)
            expected = {cid for d in self.repo.documents() for cid in d.chunk_ids}
            for name, index in (("vector", vectors), ("lexical", lexical)):
                if set(index.ids()) != expected:
                    why = (
                        f"the {name} index holds {len(index)} chunks, the database {len(expected)}"
                    )
                    raise _damaged(base, why)
        vectors.remove(pending.stale_chunk_ids)
        lexical.remove(pending.stale_chunk_ids)
        self._add(vectors, lexical, [c for _, cs in pending.upserts for c in cs])
        return self._publish(vectors, lexical, pending, guard)

    def _add(self, vectors: VectorIndex, lexical: LexicalIndex, chunks: list[Chunk]) -> None:
        if chunks:
            ids = [c.chunk_id for c in chunks]
            vectors.add(ids, self.embedder.embed([_embed_text(c) for c in chunks]))
            lexical.add(ids, [c.text for c in chunks])

    def _publish(
        self, vectors: VectorIndex, lexical: LexicalIndex, pending: _Pending, guard: CommitGuard
    ) -> int:
        generation = self.repo.current_generation() + 1
        try:
            staged = self.store.stage(generation)
            vectors.save(staged)
            lexical.save(staged)
            info = {"generation": generation, "chunks": len(vectors), "created_at": _now()}
            self.store.describe(staged, info)
            self.store.publish(staged, generation)
            with guard(pending.plan(generation)):
                self.repo.commit(generation, pending.upserts, pending.deletes)  # commit point
        except BaseException:
            # Half-written (a full disk) or refused (by the guard): its folder goes now.
            self._discard_uncommitted()
            raise
        self._point_at(generation)
        self.store.cleanup(self._kept(generation))
        self._snapshot, self._damage = None, None
        return generation

    def _discard_uncommitted(self) -> None:
        """Remove staged and published but uncommitted generation folders (kept, for the
        next command's recovery, when the database cannot say what is committed)."""
        try:
            self.store.cleanup(self._kept(self.repo.current_generation()))
        except Exception as exc:
            log.warning("uncommitted index files are left for the next command: %r", exc)

    def _point_at(self, generation: int) -> None:
        """The pointer and the manifest of a committed generation. Both are derived from the
        database: when a full disk stops them, the next command rolls them forward."""
        try:
            self.store.set_pointer(generation)
            self.store.write_manifest(self.manifest())
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            log.warning(
                "generation %d is committed; its pointer and manifest follow: %r", generation, exc
            )


NOT_INGESTED = (
    "the index could not be written, so the documents of the batch being committed were not "
    "added (batches committed before it stay, and a new run skips them)"
)


def _removal(docs: Sequence[Document]) -> _Pending:
    stale = {c for d in docs for c in d.chunk_ids}
    return _Pending(deletes=[d.doc_id for d in docs], stale_chunk_ids=stale, removed=list(docs))


def disagreement_with_database(snap: Snapshot) -> str:
    """How the loaded indexes disagree with the chunk rows; empty when they hold the same
    chunks (so emptied or swapped index files never pass for an index)."""
    rows = len(snap.chunks)
    for name, ids in (("vector", snap.vectors.ids()), ("lexical", snap.lexical.ids())):
        if len(ids) != rows or set(ids) != snap.chunks.keys():
            return f"the {name} index holds {len(ids)} chunks, the database {rows}"
    return ""


def _damaged(generation: int, why: str) -> IndexDamagedError:
    return IndexDamagedError(f"index generation {generation} is damaged: {why}; {REBUILD_HINT}")


def _as_damage(generation: int, exc: Exception) -> IndexDamagedError:
    if isinstance(exc, IndexDamagedError):
        return exc
    return _damaged(generation, f"{getattr(exc, 'filename', None) or exc} is missing")


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
