"""The document database, the index generations, the knowledge base and the small stores."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from xnai.config import Settings
from xnai.domain.layout import DataLayout
from xnai.domain.ports import (
    AuditSink,
    DocumentRepository,
    Embedder,
    IndexStore,
    KeyRing,
    LexicalIndex,
    OriginalsStore,
    StateStore,
    VectorIndex,
)
from xnai.services.access import AccessService
from xnai.services.knowledge import ChunkingPolicy, KnowledgeBase

if TYPE_CHECKING:
    from xnai.adapters.storage.sql import SqlDocumentRepository


def storage_outage_errors() -> tuple[type[Exception], ...]:
    """Errors of the database adapter that mean it cannot be reached now (refused or lost
    connections, a locked SQLite file, an exhausted pool): the API answers them with 503."""
    from xnai.adapters.storage.sql import outage_errors

    return outage_errors()


def database_url(settings: Settings) -> str:
    """The configured database, else SQLite in the data directory."""
    configured = settings.storage.database_url.get_secret_value()
    return configured or DataLayout(settings.data_dir).sqlite_url


def prepare_data_dir(layout: DataLayout) -> None:
    """The data directory, created owner-only when missing."""
    from xnai.adapters.storage.data_dir import prepare_data_dir as prepare

    prepare(layout)


def vector_index_factory(dim: int, keyring: KeyRing | None = None) -> Callable[[], VectorIndex]:
    """A factory of empty vector indexes (saved encrypted when given a key ring)."""
    from xnai.adapters.index.faiss_index import FaissVectorIndex

    return lambda: FaissVectorIndex(dim, keyring=keyring)


def lexical_index_factory(keyring: KeyRing | None = None) -> Callable[[], LexicalIndex]:
    """A factory of empty lexical indexes (saved encrypted when given a key ring)."""
    from xnai.adapters.index.bm25_index import Bm25LexicalIndex

    return lambda: Bm25LexicalIndex(keyring=keyring)


def build_repository(settings: Settings, keyring: KeyRing) -> SqlDocumentRepository:
    """Documents and chunks in the configured database, encrypted with ``keyring``."""
    from xnai.adapters.storage.sql import SqlDocumentRepository

    return SqlDocumentRepository(database_url(settings), keyring)


def build_knowledge(
    settings: Settings, repo: DocumentRepository, keyring: KeyRing, embedder: Embedder
) -> KnowledgeBase:
    """Documents in ``repo``, indexes in generations under the data directory."""
    from xnai.adapters.storage.generations import FileIndexStore

    return KnowledgeBase(
        repo,
        FileIndexStore(settings.data_dir, keyring),
        embedder,
        vector_index_factory(embedder.dim, keyring),
        lexical_index_factory(keyring),
        chunking=ChunkingPolicy(settings.ingest.chunk_tokens, settings.ingest.chunk_overlap),
        commit_every_chunks=settings.ingest.commit_every_chunks,
        keep_generations=settings.storage.keep_generations,
    )


def build_originals(layout: DataLayout, keyring: KeyRing, store: IndexStore) -> OriginalsStore:
    """Uploaded originals, written under the index writer lock of ``store``."""
    from xnai.adapters.storage.originals import FileOriginals

    return FileOriginals(layout.originals, keyring, store.lock)


def build_state(layout: DataLayout) -> StateStore:
    """Last runs of scheduled jobs and the last configuration seen: one object per process,
    so its lock serialises every read-modify-write of the file."""
    from xnai.adapters.storage.state import JsonStateFile

    return JsonStateFile(layout.compliance_state)


def build_access(
    repo: SqlDocumentRepository,
    kb: KnowledgeBase,
    audit: AuditSink,
    user_id_of: Callable[[str], str | None],
) -> AccessService:
    """Collections and access scopes, stored in the documents' database; users are granted
    by user id (``user_id_of`` resolves names)."""
    from xnai.adapters.storage.sql_collections import SqlCollectionStore

    return AccessService(
        SqlCollectionStore(repo.engine),
        lambda: kb.snapshot.documents.values(),
        audit=audit,
        user_id_of=user_id_of,
    )
