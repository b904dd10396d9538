"""The embedder, the chat model (lazy, guarded) and the bundled model files."""

from __future__ import annotations

from pathlib import Path

from xnai.config import Settings
from xnai.domain.errors import ConfigError
from xnai.domain.metrics import Metrics
from xnai.domain.ports import ChatModel, Embedder
from xnai.services.breaker import CircuitBreaker
from xnai.services.generation import GenerationLimiter
from xnai.services.lazy import LazyChatModel
from xnai.services.resilience import GuardedChatModel, RetryPolicy


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
            from xnai.adapters.memory.embed import HashingEmbedder

            return HashingEmbedder()
    raise ConfigError(f"unknown models.embedder_backend {m.embedder_backend!r}")


def model_label(settings: Settings) -> str:
    """A display name for the configured model before it is loaded."""
    m = settings.models
    match m.llm_backend:
        case "llama_cpp" | "llama_server":
            return m.llm_path.stem if m.llm_path else m.llm_preset
        case "openai":
            return m.openai_model
    return "fake"


def model_path(settings: Settings) -> Path:
    """The GGUF file to load: the configured path or the assembled bundled preset."""
    if settings.models.llm_path is not None:
        from xnai.adapters.storage.fsutil import existing_file

        return existing_file(settings.models.llm_path.expanduser(), "models.llm_path")
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
    from xnai.adapters.storage.fsutil import build_once

    return build_once(settings.models_dir / MODEL_FILENAME, build_minilm_onnx)


def build_chat_model(settings: Settings) -> ChatModel:
    """The configured chat model, loaded."""
    m = settings.models
    match m.llm_backend:
        case "llama_cpp":
            from xnai.adapters.llm.llama_cpp import LlamaCppChatModel

            return LlamaCppChatModel(
                model_path(settings), n_ctx=m.n_ctx, n_threads=m.n_threads, n_batch=m.n_batch
            )
        case "llama_server":
            from xnai.adapters.llm.llama_server import LlamaServerChatModel

            return LlamaServerChatModel(
                model_path(settings),
                n_ctx=m.n_ctx,
                parallel=m.generation_slots,
                n_threads=m.n_threads,
                n_batch=m.n_batch,
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
            from xnai.adapters.memory.llm import FakeChatModel

            fault_file = settings.absolute(m.fake_fault_file) if m.fake_fault_file else None
            return FakeChatModel(context_size=m.n_ctx, fault_file=fault_file)
    raise ConfigError(f"unknown models.llm_backend {m.llm_backend!r}")


def lazy_chat_model(settings: Settings) -> LazyChatModel:
    """The configured chat model, loaded on first use."""
    return LazyChatModel(
        lambda: build_chat_model(settings), model_label(settings), settings.models.n_ctx
    )


def guard_model(settings: Settings, model: ChatModel, metrics: Metrics) -> GuardedChatModel:
    """``model`` behind its circuit breaker, deadline, retries and generation queue."""
    m, cb = settings.models, settings.enterprise.circuit_breaker
    breaker = CircuitBreaker(
        m.llm_backend, fail_max=cb.fail_max, reset_timeout=cb.reset_timeout, metrics=metrics
    )
    limiter = GenerationLimiter(
        m.generation_slots,
        m.generation_queue,
        metrics=metrics,
        precheck=breaker.check,
        max_wait_s=m.max_queue_wait_s,
    )
    return GuardedChatModel(
        model,
        breaker=breaker,
        limiter=limiter,
        deadline_s=m.timeout_s,
        retry=RetryPolicy(m.retry_attempts, m.retry_backoff_s),
        metrics=metrics,
    )
