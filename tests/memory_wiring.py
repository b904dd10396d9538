"""Services under test wired from the in-memory adapters, without building a container."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from xnai.adapters.loaders.registry import default_loaders, loader_for
from xnai.adapters.memory import (
    FakeChatModel,
    HashingEmbedder,
    MemoryCollectionStore,
    MemoryDocumentRepository,
    MemoryIndexStore,
    MemoryKeyRing,
    MemoryLexicalIndex,
    MemoryOriginals,
    NumpyVectorIndex,
    RecordingAudit,
    RecordingMetrics,
)
from xnai.bootstrap.use_cases import ingest_limits
from xnai.config import Ingest, Settings
from xnai.domain.access import default_collection
from xnai.domain.ports import ChatModel, Loader
from xnai.services.access import AccessService
from xnai.services.answer import AnswerPolicy, AnswerService
from xnai.services.ingestion import IngestionService
from xnai.services.knowledge import ChunkingPolicy, KnowledgeBase
from xnai.services.retrieval import Retriever


def memory_kb(root: Path, chunking: ChunkingPolicy | None = None) -> KnowledgeBase:
    """A knowledge base over in-memory stores and the hashing embedder."""
    embedder = HashingEmbedder()
    return KnowledgeBase(
        MemoryDocumentRepository(),
        MemoryIndexStore(root),
        embedder,
        lambda: NumpyVectorIndex(embedder.dim),
        MemoryLexicalIndex,
        chunking=chunking or ChunkingPolicy(),
    )


def memory_answers(
    kb: KnowledgeBase, model: ChatModel | None = None, policy: AnswerPolicy | None = None
) -> AnswerService:
    """An answer service over ``kb`` with the deterministic fake model."""
    retriever = Retriever(lambda: kb.snapshot, kb.embedder)
    return AnswerService(retriever, model or FakeChatModel(), policy or AnswerPolicy())


@dataclass
class MemoryServices:
    """The services a container offers over one knowledge base, on in-memory adapters."""

    kb: KnowledgeBase
    retriever: Retriever
    access: AccessService
    ingestion: IngestionService
    answers: AnswerService
    keyring: MemoryKeyRing
    audit: RecordingAudit
    originals: MemoryOriginals


def memory_services(root: Path, ingest: Ingest | None = None) -> MemoryServices:
    """Knowledge base, retrieval, access, ingestion (the real loaders, the ``[ingest]``
    limits) and answers, wired from in-memory adapters as the container wires them."""
    kb = memory_kb(root)
    keyring, audit = MemoryKeyRing("services"), RecordingAudit()
    originals = MemoryOriginals(keyring)
    loaders = default_loaders()

    def find_loader(path: Path) -> Loader:
        return loader_for(path, loaders)

    limits = ingest_limits(Settings(ingest=ingest or Ingest()))
    ingestion = IngestionService(
        kb, find_loader, limits, originals=originals, audit=audit, metrics=RecordingMetrics()
    )
    # Seeded as the SQL store seeds a new database.
    store = MemoryCollectionStore([default_collection()])
    access = AccessService(store, lambda: kb.snapshot.documents.values(), audit=audit)
    retriever = Retriever(lambda: kb.snapshot, kb.embedder)
    answers = AnswerService(retriever, FakeChatModel(), AnswerPolicy(), audit=audit)
    return MemoryServices(kb, retriever, access, ingestion, answers, keyring, audit, originals)
