"""In-memory reference adapters: one real, deterministic implementation of every port.

Tests and offline demos use them; each runs the same contract suite as the real adapters.
"""

from xnai.adapters.memory.access import MemoryCollectionStore
from xnai.adapters.memory.answers import MemoryAnswerBundles
from xnai.adapters.memory.audit import MemoryAnchorStore, MemoryAuditLog, RecordingAudit
from xnai.adapters.memory.cache import MemoryCache
from xnai.adapters.memory.documents import MemoryDocumentRepository
from xnai.adapters.memory.embed import HashingEmbedder
from xnai.adapters.memory.identity import FastPasswordHasher, MemoryUserRepository, PlainTotpCodes
from xnai.adapters.memory.index_store import MemoryIndexStore
from xnai.adapters.memory.keys import MemoryEncryptedStore, MemoryKeyRing
from xnai.adapters.memory.lexical_index import MemoryLexicalIndex
from xnai.adapters.memory.llm import FakeChatModel
from xnai.adapters.memory.metrics import RecordingMetrics
from xnai.adapters.memory.sealing import MemorySealer
from xnai.adapters.memory.signing import HmacSigner
from xnai.adapters.memory.storage import MemoryOriginals, MemoryStateStore
from xnai.adapters.memory.vector_index import NumpyVectorIndex
from xnai.adapters.memory.voice import CodedSpeechToText, CodedTextToSpeech

__all__ = [
    "CodedSpeechToText",
    "CodedTextToSpeech",
    "FakeChatModel",
    "FastPasswordHasher",
    "HashingEmbedder",
    "HmacSigner",
    "MemoryAnchorStore",
    "MemoryAnswerBundles",
    "MemoryAuditLog",
    "MemoryCache",
    "MemoryCollectionStore",
    "MemoryDocumentRepository",
    "MemoryEncryptedStore",
    "MemoryIndexStore",
    "MemoryKeyRing",
    "MemoryLexicalIndex",
    "MemoryOriginals",
    "MemorySealer",
    "MemoryStateStore",
    "MemoryUserRepository",
    "NumpyVectorIndex",
    "PlainTotpCodes",
    "RecordingAudit",
    "RecordingMetrics",
]
