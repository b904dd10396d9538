"""Chat model running a local GGUF file in-process through llama-cpp-python."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

from xnai.adapters.llm.ggml import import_runtime, model_file
from xnai.domain.errors import ModelError, ModelUnavailableError
from xnai.domain.models import ChatMessage

if TYPE_CHECKING:
    from llama_cpp import Llama
    from llama_cpp.llama_types import ChatCompletionRequestMessage


def _import_llama_cpp() -> ModuleType:
    """Import llama_cpp on first use."""
    return import_runtime(
        "llama_cpp",
        feature="the llama.cpp model backend",
        package="llama-cpp-python",
        extra="llama",
        install="run `make install`, which builds it with CPU-safe flags",
    )


class LlamaCppChatModel:
    """A GGUF model in this process; generation is serialised (llama.cpp is not thread-safe)."""

    def __init__(
        self,
        path: Path,
        *,
        n_ctx: int = 4096,
        n_threads: int = 2,
        n_batch: int = 512,
        seed: int = 0,
    ) -> None:
        path = model_file(path)
        self._llm = _load(path, n_ctx=n_ctx, n_threads=n_threads, n_batch=n_batch, seed=seed)
        self._seed = seed
        self._lock = threading.Lock()
        self.name = path.stem
        self.context_size = n_ctx

    @property
    def raw(self) -> Llama:
        """The underlying ``llama_cpp.Llama`` (benchmarks only: bypasses the lock)."""
        return self._llm

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` by the model's own tokenizer, without BOS or special tokens."""
        # No lock: tokenizing only reads the immutable vocabulary, never the context,
        # so it may run while another thread generates (llama-server does the same).
        try:
            return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))
        except Exception as exc:  # llama_cpp raises RuntimeError and ctypes errors
            raise ModelError(f"{self.name}: tokenizing failed: {exc}") from exc

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: Sequence[str] = (),
    ) -> Iterator[str]:
        """Yield the reply's text deltas; the chat template comes from the GGUF metadata."""
        # The lock is held until the generator finishes or is closed, since the
        # Llama instance keeps generation state between chunks.
        with self._lock:
            try:
                chunks = self._llm.create_chat_completion(
                    messages=_request_messages(messages),
                    stream=True,
                    max_tokens=max_tokens,
                    temperature=temperature,
                    stop=list(stop),
                    seed=self._seed,
                )
                try:
                    yield from _text_pieces(chunks)
                finally:
                    # Finish llama_cpp's generator under the lock, not later at collection.
                    _close(chunks)
            except Exception as exc:  # context overflow is ValueError, decode failure RuntimeError
                raise ModelError(f"{self.name}: generation failed: {exc}") from exc

    def close(self) -> None:
        """Free the model's memory now rather than at garbage collection."""
        with self._lock:
            self._llm.close()


def _load(path: Path, *, n_ctx: int, n_threads: int, n_batch: int, seed: int) -> Llama:
    """Load ``path`` with llama.cpp; ModelUnavailableError when it cannot."""
    llama_cpp = _import_llama_cpp()
    try:
        llm: Llama = llama_cpp.Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            n_batch=n_batch,
            n_ubatch=min(n_batch, 512),
            seed=seed,
            verbose=False,
        )
    except Exception as exc:  # a corrupt or truncated GGUF raises ValueError
        raise ModelUnavailableError(f"cannot load model {path}: {exc}") from exc
    return llm


def _request_messages(messages: Sequence[ChatMessage]) -> list[ChatCompletionRequestMessage]:
    """Messages in the OpenAI-style dict form llama_cpp expects."""
    plain = [{"role": m.role, "content": m.content} for m in messages]
    # Roles are plain strings in the domain; llama_cpp types them as literals per role.
    return cast("list[ChatCompletionRequestMessage]", plain)


def _text_pieces(chunks: Any) -> Iterator[str]:
    """Non-empty content deltas of streamed chat completion chunks."""
    for chunk in chunks:
        choices = chunk.get("choices") or []
        content = choices[0].get("delta", {}).get("content") if choices else None
        if isinstance(content, str) and content:
            yield content


def _close(iterator: object) -> None:
    """Close a generator (no-op for other iterables)."""
    close = getattr(iterator, "close", None)
    if callable(close):
        close()
