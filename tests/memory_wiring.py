"""Services under test wired from the in-memory adapters, without building a container."""

from __future__ import annotations

from pathlib import Path

from xnai.adapters.memory import (
    FakeChatModel,
    HashingEmbedder,
    MemoryDocumentRepository,
    MemoryIndexStore,
    MemoryLexicalIndex,
    NumpyVectorIndex,
)
from xnai.domain.ports import ChatModel
from xnai.services.answer import AnswerPolicy, AnswerService
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
