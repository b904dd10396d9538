"""Ports: the interfaces services depend on; adapters implement them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol, Required, TypedDict, Unpack, runtime_checkable

from xnai.domain.access import RowFilter
from xnai.domain.models import ChatMessage, Chunk, Document, LoadedDocument


@runtime_checkable
class Loader(Protocol):
    """Turns the bytes of one file into normalised text."""

    name: str
    version: str
    suffixes: tuple[str, ...]

    def load(self, path: Path, data: bytes) -> LoadedDocument:
        """Parse ``data`` (read from ``path``); raise DocumentError when it cannot."""
        ...


@runtime_checkable
class TokenCounter(Protocol):
    """Counts model tokens in a text."""

    def count_tokens(self, text: str) -> int:
        """Number of tokens ``text`` encodes to (no special tokens)."""
        ...


class Vectors(Protocol):
    """Rows of float32 numbers, one per text (a numpy array is one): the services pass them
    from the embedder to the vector index without looking inside."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    def __len__(self) -> int: ...

    def __getitem__(self, key: Any, /) -> Any: ...

    def __array__(self) -> Any:
        """The rows as an array (the array interface numeric libraries read)."""
        ...


@runtime_checkable
class Embedder(TokenCounter, Protocol):
    """Maps texts to L2-normalised float32 vectors."""

    name: str
    version: str
    dim: int
    max_seq_length: int

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed ``texts`` in batches; returns shape (len(texts), dim), rows of norm 1."""
        ...


@runtime_checkable
class VectorIndex(Protocol):
    """Exact or approximate inner-product search over chunk vectors."""

    def __len__(self) -> int: ...

    def ids(self) -> list[str]:
        """Chunk ids in index order."""
        ...

    def add(self, ids: Sequence[str], vectors: Vectors) -> None:
        """Append vectors under the given chunk ids."""
        ...

    def remove(self, ids: set[str]) -> None:
        """Drop the vectors of these chunk ids (unknown ids are ignored)."""
        ...

    def search(
        self, vector: Vectors, k: int, allowed: RowFilter | None = None
    ) -> list[tuple[str, float]]:
        """Top ``k`` (chunk id, score) by inner product, best first; with ``allowed``, only
        rows the filter lets through are ranked (ValueError when it has another length)."""
        ...

    def save(self, directory: Path) -> list[Path]:
        """Write the index into ``directory``; return the files written (not yet fsynced)."""
        ...

    def load(self, directory: Path) -> None:
        """Replace the contents with the index saved in ``directory``."""
        ...


@runtime_checkable
class LexicalIndex(Protocol):
    """Keyword (BM25) search over chunk texts."""

    def __len__(self) -> int: ...

    def ids(self) -> list[str]:
        """Chunk ids in index order."""
        ...

    def add(self, ids: Sequence[str], texts: Sequence[str]) -> None:
        """Index texts under the given chunk ids."""
        ...

    def remove(self, ids: set[str]) -> None:
        """Drop these chunk ids (unknown ids are ignored)."""
        ...

    def search(
        self, query: str, k: int, allowed: RowFilter | None = None
    ) -> list[tuple[str, float]]:
        """Top ``k`` (chunk id, BM25 score), best first; no hits for a query of no known term;
        with ``allowed``, only rows the filter lets through are ranked."""
        ...

    def save(self, directory: Path) -> list[Path]:
        """Write the index into ``directory``; return the files written (not yet fsynced)."""
        ...

    def load(self, directory: Path) -> None:
        """Replace the contents with the index saved in ``directory``."""
        ...


@runtime_checkable
class ChatModel(TokenCounter, Protocol):
    """A chat language model that streams text."""

    name: str
    context_size: int

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: Sequence[str] = (),
    ) -> Iterator[str]:
        """Yield the reply piece by piece; raise ModelError on failure."""
        ...


@runtime_checkable
class DocumentRepository(Protocol):
    """Documents and chunks of the committed index generation (the commit point)."""

    def current_generation(self) -> int:
        """The committed generation number (0 when nothing was ever committed)."""
        ...

    def commit(
        self,
        generation: int,
        upserts: Sequence[tuple[Document, Sequence[Chunk]]],
        deletes: Sequence[str],
    ) -> None:
        """In one transaction: replace/insert documents with their chunks, delete documents
        by id, and set the committed generation."""
        ...

    def documents(self) -> list[Document]:
        """Every document, ordered by source."""
        ...

    def document_by_source(self, source: str) -> Document | None: ...

    def document_by_sha(self, sha256: str) -> Document | None: ...

    def document(self, doc_id: str) -> Document | None: ...

    def chunks(self) -> list[Chunk]:
        """Every chunk, ordered by document and ordinal."""
        ...

    @property
    def backend(self) -> str:
        """The kind of database (``sqlite``, ``postgresql``, ``memory``)."""
        ...

    def ping(self) -> None:
        """Raise unless the database answers a trivial query now."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class IndexStore(Protocol):
    """Directories of index generations, the current-generation pointer and the manifest."""

    def lock(self) -> AbstractContextManager[None]:
        """Exclusive writer lock across processes."""
        ...

    def try_lock(self) -> AbstractContextManager[bool]:
        """The writer lock if free right now: yields whether it was acquired."""
        ...

    def read_pointer(self) -> int | None:
        """Generation named by the pointer file, or None when absent."""
        ...

    def pointer_stamp(self) -> tuple[int, int] | None:
        """Cheap change detector for the pointer file (inode, mtime_ns)."""
        ...

    def stage(self, generation: int) -> Path:
        """A fresh temporary directory to write a generation into."""
        ...

    def publish(self, staged: Path, generation: int) -> Path:
        """Make a staged generation durable and visible under its final name."""
        ...

    def generation_dir(self, generation: int) -> Path: ...

    def describe(self, staged: Path, info: dict[str, Any]) -> None:
        """Record ``info`` and the sha256 of every staged file's content with the generation."""
        ...

    def damage(self, generation: int) -> list[str]:
        """Each file of a published generation that is missing or whose content no longer
        has its recorded sha256; empty when intact."""
        ...

    def generations(self) -> list[int]:
        """Published generation numbers present on disk, ascending."""
        ...

    def set_pointer(self, generation: int) -> None:
        """Atomically point at ``generation``."""
        ...

    def read_manifest(self) -> dict[str, Any] | None: ...

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Atomically replace the manifest file."""
        ...

    def cleanup(self, keep: set[int]) -> list[Path]:
        """Delete temporary leftovers and generations not in ``keep``; return what went."""
        ...


@runtime_checkable
class Sealer(Protocol):
    """Authenticated encryption of short secrets under one key."""

    def seal(self, data: bytes) -> bytes:
        """``data`` encrypted and authenticated."""
        ...

    def open(self, token: bytes) -> bytes | None:
        """The data inside ``token``; None when it was altered or sealed under another key."""
        ...


@runtime_checkable
class SignatureVerifier(Protocol):
    """Checks signatures of one algorithm."""

    algorithm: str

    def verify(self, data: bytes, signature: bytes, key_id: str) -> bool:
        """True when ``signature`` was made over ``data`` with the key ``key_id``; False when
        either was altered or the key is unknown (never raises for bad input)."""
        ...


@runtime_checkable
class Signer(SignatureVerifier, Protocol):
    """Signs with the installation's current key; verifies with any key it still holds."""

    def sign(self, data: bytes) -> tuple[str, bytes]:
        """(key id, signature) of ``data`` under the current key."""
        ...

    def public_key(self, key_id: str | None = None) -> str | None:
        """The PEM public key of ``key_id`` (default: the current key); None when the key
        is unknown or the algorithm has no public key."""
        ...


@runtime_checkable
class KeyRing(Protocol):
    """Keys derived per context (user_data, system_config, audit_logs, ai_models).

    ``encrypt`` always uses the newest key; ``decrypt`` accepts any key still on the ring
    (MultiFernet semantics) and raises IntegrityError for tampered data or an unknown key.
    With encryption disabled, ``encrypt``/``decrypt`` pass bytes through unchanged.
    """

    enabled: bool

    def encrypt(self, context: str, data: bytes) -> bytes: ...

    def decrypt(self, context: str, token: bytes) -> bytes: ...

    def mac_key(self, context: str) -> tuple[str, bytes]:
        """The current (key id, HMAC key) of ``context``."""
        ...

    def mac_key_by_id(self, context: str, key_id: str) -> bytes | None:
        """An HMAC key of ``context`` by id, retired ones included; None when unknown."""
        ...

    def sealer(self, context: str, label: bytes) -> Sealer:
        """A sealer keyed from ``context``'s current HMAC key and ``label``; it encrypts
        even when encryption at rest is off."""
        ...


class EventFields(TypedDict, total=False):
    """What an audit event says besides its type, in every sink alike."""

    action: Required[str]
    resource: str
    user_id: str | None
    success: bool
    severity: str
    source_ip: str | None
    details: Mapping[str, Any] | None


# What a sink stores for a field the caller left out.
EVENT_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "resource": "",
        "user_id": None,
        "success": True,
        "severity": "info",
        "source_ip": None,
        "details": None,
    }
)


@runtime_checkable
class AuditSink(Protocol):
    """Where services report security-relevant events (the audit trail)."""

    def record(self, event_type: str, **fields: Unpack[EventFields]) -> None:
        """Append one event; raise only when the trail cannot be written."""
        ...


class OriginalsStore(Protocol):
    """Uploaded files as received, content-addressed by sha256 and encrypted at rest."""

    def keep(self, name: str, data: bytes) -> Path:
        """Store ``data`` (once per content) under the suffix of ``name``; where it is."""
        ...

    def read(self, path: Path) -> bytes:
        """The bytes of a stored file; IntegrityError when tampered with."""
        ...

    def forget(self, sha256: str) -> int:
        """Remove the stored files of one content hash; how many were removed."""
        ...


class StateStore(Protocol):
    """Named JSON values kept between runs (last runs of jobs, the configuration seen)."""

    def get(self, key: str) -> Any:
        """The value stored under ``key``, or None."""
        ...

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` (JSON-serialisable) under ``key``."""
        ...
