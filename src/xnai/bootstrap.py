"""Composition root: the only place that knows concrete adapters."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from xnai.config import Settings, disable_telemetry
from xnai.domain.errors import ConfigError
from xnai.domain.models import ChatMessage, IngestReport, SearchMode
from xnai.domain.ports import (
    AuditSink,
    ChatModel,
    Embedder,
    LexicalIndex,
    Loader,
    VectorIndex,
)
from xnai.services.answer import AnswerPolicy, AnswerService
from xnai.services.audit import RecordingAudit
from xnai.services.knowledge import (
    ChunkingPolicy,
    KnowledgeBase,
    Progress,
    find_documents,
    sha256_bytes,
)
from xnai.services.retrieval import RetrievalPolicy, Retriever
from xnai.services.sources import MB, file_sources, upload_sources

log = logging.getLogger("xnai")


class LazyChatModel:
    """Loads the real model on first use so commands that never generate stay fast."""

    def __init__(self, factory: Callable[[], ChatModel], name: str, context_size: int) -> None:
        self._factory = factory
        self._model: ChatModel | None = None
        self._lock = threading.Lock()
        self.name = name
        self.context_size = context_size

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory."""
        return self._model is not None

    def load(self) -> ChatModel:
        """Load (once) and return the model."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._factory()
                    self.name = self._model.name
        return self._model

    def count_tokens(self, text: str) -> int:
        """Tokens as the loaded model counts them."""
        return self.load().count_tokens(text)

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: Sequence[str] = (),
    ) -> Iterator[str]:
        """Stream from the loaded model."""
        return self.load().stream(
            messages, max_tokens=max_tokens, temperature=temperature, stop=stop
        )


@dataclass
class Readiness:
    """What has finished loading."""

    index_ready: bool = False
    model_error: str | None = None


@dataclass
class Container:
    """Everything a process needs, built from one Settings object."""

    settings: Settings
    kb: KnowledgeBase
    retriever: Retriever
    answers: AnswerService
    model: LazyChatModel
    embedder: Embedder
    loaders: list[Loader] = field(default_factory=list)
    readiness: Readiness = field(default_factory=Readiness)
    audit: AuditSink = field(default_factory=RecordingAudit)

    def open_index(self) -> None:
        """Recover and load the committed index generation."""
        self.kb.open()
        self.readiness.index_ready = True

    def warm_up(self) -> None:
        """Load the index and the model and run one token, so the first query is fast."""
        try:
            if not self.readiness.index_ready:
                self.open_index()
            self.embedder.embed(["warm up"])
            model = self.model.load()
            for _ in model.stream([ChatMessage("user", "Hi")], max_tokens=1):
                break
        except Exception as exc:  # reported by /ready; the process keeps serving /health
            self.readiness.model_error = f"{type(exc).__name__}: {exc}"
            log.exception("warm-up failed")

    def loader_for(self, path: Path) -> Loader:
        """The loader for a file by its suffix."""
        from xnai.adapters.loaders.registry import loader_for

        return loader_for(path, self.loaders)

    @property
    def max_file_bytes(self) -> int:
        """The configured size limit of one ingested file."""
        return int(self.settings.ingest.max_file_mb * MB)

    def document_files(self, paths: Sequence[Path]) -> list[Path]:
        """Files to ingest under ``paths`` (folders recursively, supported types)."""
        return find_documents(paths, self.settings.ingest.suffixes)

    def ingest_files(
        self, files: Sequence[Path], *, user: str, progress: Progress | None = None
    ) -> IngestReport:
        """Ingest files (see ``document_files``); errors are per file."""
        sources = file_sources(files, self.loader_for, self.max_file_bytes, self.kb.is_unchanged)
        return self.kb.ingest(sources, user=user, progress=progress)

    def ingest_uploads(self, uploads: Sequence[tuple[str, bytes]], *, user: str) -> IngestReport:
        """Keep the originals and ingest uploaded files; errors are per file."""
        for name, data in uploads:
            if len(data) <= self.max_file_bytes:
                self.keep_original(name, data)
        sources = upload_sources(uploads, self.loader_for, self.max_file_bytes)
        return self.kb.ingest(sources, user=user)

    def keep_original(self, name: str, data: bytes) -> Path:
        """Store an uploaded file's bytes (content-addressed, owner-only) and return the path."""
        from xnai.adapters.storage.fsutil import atomic_write_bytes

        digest = sha256_bytes(data)
        path = self.settings.data_dir / "originals" / f"{digest}{Path(name).suffix.lower()}"
        if not path.exists():
            atomic_write_bytes(path, data)
        return path

    def close(self) -> None:
        """Release database connections."""
        self.kb.repo.close()


def prepare_process() -> None:
    """Process-wide setup of entrypoints: telemetry off, owner-only files."""
    disable_telemetry()
    os.umask(0o077)


def build(settings: Settings) -> Container:
    """Wire adapters into services according to ``settings``."""
    disable_telemetry()
    # Read once by the OpenMP runtime when llama.cpp loads; an explicit variable wins.
    os.environ.setdefault("OMP_WAIT_POLICY", settings.models.omp_wait_policy.upper())
    from xnai.adapters.loaders.registry import default_loaders
    from xnai.adapters.storage.generations import FileIndexStore
    from xnai.adapters.storage.sql import SqlDocumentRepository, sqlite_url

    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    embedder = build_embedder(settings)
    repo = SqlDocumentRepository(settings.storage.database_url or sqlite_url(data_dir))
    kb = KnowledgeBase(
        repo,
        FileIndexStore(data_dir),
        embedder,
        vector_index_factory(embedder.dim),
        lexical_index_factory(),
        chunking=ChunkingPolicy(settings.ingest.chunk_tokens, settings.ingest.chunk_overlap),
        commit_every_chunks=settings.ingest.commit_every_chunks,
        keep_generations=settings.storage.keep_generations,
    )
    retriever = Retriever(
        lambda: kb.snapshot,
        embedder,
        RetrievalPolicy(candidates=settings.rag.candidates, rrf_k=settings.rag.rrf_k),
    )
    model = LazyChatModel(
        lambda: build_chat_model(settings), model_label(settings), settings.models.n_ctx
    )
    policy = AnswerPolicy(
        mode=SearchMode(settings.rag.mode),
        top_k=settings.rag.top_k,
        max_tokens=settings.models.max_tokens,
        temperature=settings.models.temperature,
        min_score=settings.rag.min_score,
        context_tokens=settings.rag.context_tokens,
    )
    answers = AnswerService(retriever, model, policy)
    return Container(settings, kb, retriever, answers, model, embedder, default_loaders())


def build_embedder(settings: Settings) -> Embedder:
    """The configured embedder."""
    m = settings.models
    match m.embedder_backend:
        case "onnx":
            from xnai.adapters.embed.onnx_minilm import OnnxMiniLMEmbedder

            return OnnxMiniLMEmbedder(
                variant=m.embedder_variant,
                models_dir=settings.models_dir,
                max_seq_length=m.max_seq_length,
                batch_size=m.embed_batch_size,
                threads=m.embed_threads,
            )
        case "fake":
            from xnai.adapters.embed.fake import HashingEmbedder

            return HashingEmbedder()
    raise ConfigError(f"unknown models.embedder_backend {m.embedder_backend!r}")


def vector_index_factory(dim: int) -> Callable[[], VectorIndex]:
    """A factory of empty vector indexes."""
    from xnai.adapters.index.faiss_index import FaissVectorIndex

    return lambda: FaissVectorIndex(dim)


def lexical_index_factory() -> Callable[[], LexicalIndex]:
    """A factory of empty lexical indexes."""
    from xnai.adapters.index.bm25_index import Bm25LexicalIndex

    return lambda: Bm25LexicalIndex()


def model_label(settings: Settings) -> str:
    """A display name for the configured model before it is loaded."""
    m = settings.models
    match m.llm_backend:
        case "llama_cpp":
            return m.llm_path.stem if m.llm_path else m.llm_preset
        case "openai":
            return m.openai_model
    return "fake"


def model_path(settings: Settings) -> Path:
    """The GGUF file to load: the configured path or the assembled bundled preset."""
    if settings.models.llm_path is not None:
        path = settings.models.llm_path.expanduser()
        if not path.is_file():
            raise ConfigError(f"models.llm_path: no such file: {path}")
        return path
    return install_model(settings)


def install_model(settings: Settings, preset: str | None = None) -> Path:
    """Assemble a bundled model preset into the models directory and verify it."""
    from xnai.adapters.model_files import assemble

    return assemble(preset or settings.models.llm_preset, settings.models_dir)


def install_embedder(settings: Settings) -> Path | None:
    """Build the fp32 embedding model into the models directory if it is missing."""
    m = settings.models
    if m.embedder_backend != "onnx" or m.embedder_variant != "fp32":
        return None
    from xnai.adapters.embed.minilm_build import MODEL_FILENAME, build_minilm_onnx

    target = settings.models_dir / MODEL_FILENAME
    return target if target.is_file() else build_minilm_onnx(target)


def build_chat_model(settings: Settings) -> ChatModel:
    """The configured chat model, loaded."""
    m = settings.models
    match m.llm_backend:
        case "llama_cpp":
            from xnai.adapters.llm.llama_cpp import LlamaCppChatModel

            return LlamaCppChatModel(
                model_path(settings), n_ctx=m.n_ctx, n_threads=m.n_threads, n_batch=m.n_batch
            )
        case "openai":
            from xnai.adapters.llm.openai_http import OpenAIChatModel

            return OpenAIChatModel(
                m.openai_base_url,
                m.openai_model,
                m.openai_api_key.get_secret_value(),
                m.timeout_s,
                context_size=m.n_ctx,
            )
        case "fake":
            from xnai.adapters.llm.fake import FakeChatModel

            return FakeChatModel(context_size=m.n_ctx)
    raise ConfigError(f"unknown models.llm_backend {m.llm_backend!r}")
