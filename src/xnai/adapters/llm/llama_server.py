"""Chat model served by llama.cpp's server engine in this process (the xllamacpp package).

Unlike llama-cpp-python, which decodes one sequence at a time, the server engine decodes
several requests in one batch (continuous batching over parallel slots) and keeps each
slot's prompt in its KV cache, so the system prompt that every request starts with is
evaluated once, not once per question.

The engine always starts its HTTP front end; it is bound to a Unix socket in a private
temporary directory (mode 0700, removed on close) and requires a random API key, so no TCP
port is opened and no other local user can reach the model. The socket is used only to
count tokens; generation calls the engine directly.
"""

from __future__ import annotations

import functools
import json
import queue
import secrets
import shutil
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from xnai.adapters.llm.ggml import import_runtime, model_file
from xnai.domain.errors import ModelError, ModelUnavailableError
from xnai.domain.models import ChatMessage

_SOCKET_NAME = "llm.sock"
# A reply piece, the end of the reply, or an error from the engine.
_END = object()
# How long closing a stream waits for the engine to stop its request, seconds.
_STOP_WAIT_S = 60.0
# Texts whose token counts are remembered (sentences and passages, a few hundred bytes each).
_COUNT_CACHE = 8192


def _import_xllamacpp() -> ModuleType:
    """Import xllamacpp on first use."""
    return import_runtime(
        "xllamacpp",
        feature="the llama.cpp server backend (several answers at once)",
        package="xllamacpp",
        extra="server",
        otherwise="set models.llm_backend = 'llama_cpp'",
    )


class LlamaServerChatModel:
    """A GGUF model decoded by llama.cpp's server engine: ``parallel`` requests at once."""

    def __init__(
        self,
        path: Path,
        *,
        n_ctx: int = 4096,
        parallel: int = 4,
        n_threads: int = 2,
        n_batch: int = 512,
        seed: int = 0,
    ) -> None:
        path = model_file(path)
        if parallel < 1:
            raise ValueError("parallel must be >= 1")
        self.name = path.stem
        self.context_size = n_ctx
        self.parallel = parallel
        self._seed = seed
        self._key = secrets.token_urlsafe(32)
        # A short path of its own: a Unix socket path may not exceed 107 bytes.
        self._socket_dir = Path(tempfile.mkdtemp(prefix="xnai-llm-"))
        self._socket = self._socket_dir / _SOCKET_NAME
        xlc = _import_xllamacpp()
        params = xlc.CommonParams()
        params.model.path = str(path)
        params.warmup = False
        params.verbosity = -1  # errors reach the caller; the engine's own log stays quiet
        params.n_parallel = parallel
        # One pool of KV cells shared by the slots: a request may use the whole window
        # while the others are short, and a prefix cached by one slot serves the next.
        params.kv_unified = True
        params.n_ctx = n_ctx * parallel
        params.n_batch = n_batch
        params.n_ubatch = min(n_batch, 512)
        params.cpuparams.n_threads = n_threads
        params.cpuparams_batch.n_threads = n_threads
        params.cache_prompt = True
        params.hostnames = [str(self._socket)]
        params.api_keys = [self._key]
        try:
            self._server = xlc.Server(params)
        except Exception as exc:  # a corrupt GGUF or a bad parameter
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            raise ModelUnavailableError(f"cannot load model {path}: {exc}") from exc
        self._counted = functools.lru_cache(maxsize=_COUNT_CACHE)(self._count)
        self._http = httpx.Client(
            transport=httpx.HTTPTransport(uds=str(self._socket)),
            base_url="http://llm",
            headers={"Authorization": f"Bearer {self._key}"},
            timeout=httpx.Timeout(30.0, connect=5.0),
        )

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` by the model's own tokenizer, without BOS or special tokens.

        Remembered for the most recent texts: evidence selection counts the same sentences
        of the same passages again for each budget and each question that retrieves them.
        """
        if not text:
            return 0
        return self._counted(text)

    def _count(self, text: str) -> int:
        try:
            response = self._http.post(
                "/tokenize", json={"content": text, "add_special": False, "parse_special": False}
            )
            response.raise_for_status()
            return len(response.json()["tokens"])
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            raise ModelError(f"{self.name}: tokenizing failed: {exc}") from exc

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: Sequence[str] = (),
    ) -> Iterator[str]:
        """Yield the reply's text deltas while other requests decode in the same batch.

        Closing the iterator early stops this request's decoding at the next piece.
        """
        request = {
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stop": list(stop),
            "seed": self._seed,
            "stream": True,
            "cache_prompt": True,
        }
        pieces: queue.Queue[object] = queue.Queue()
        cancelled = threading.Event()

        def on_chunk(chunk: dict[str, Any]) -> bool:
            pieces.put(chunk)
            return cancelled.is_set()  # True tells the engine to stop this request

        def run() -> None:
            try:
                self._server.handle_chat_completions(request, on_chunk)
            except Exception as exc:  # the engine raises ValueError on a bad request
                pieces.put(exc)
            finally:
                pieces.put(_END)

        worker = threading.Thread(target=run, name="xnai-llm-request", daemon=True)
        worker.start()
        try:
            while (item := pieces.get()) is not _END:
                if isinstance(item, Exception):
                    raise ModelError(f"{self.name}: generation failed: {item}") from item
                text = _delta(self.name, item)
                if text:
                    yield text
        finally:
            cancelled.set()
            # The engine stops at its next piece; wait for that, so that no request thread
            # is left inside the engine when it shuts down.
            worker.join(timeout=_STOP_WAIT_S)

    def close(self) -> None:
        """Stop the engine and free the model's memory now."""
        self._http.close()
        server = self.__dict__.pop("_server", None)
        del server
        shutil.rmtree(self._socket_dir, ignore_errors=True)


def _delta(name: str, chunk: object) -> str:
    """The text of one streamed chunk; ModelError for an error object."""
    if not isinstance(chunk, dict):
        raise ModelError(f"{name}: unexpected reply from the engine: {chunk!r:.200}")
    error = chunk.get("error") or (chunk if "code" in chunk and "message" in chunk else None)
    if error:
        message = error.get("message", error) if isinstance(error, dict) else error
        raise ModelError(f"{name}: generation failed: {json.dumps(message)[:300]}")
    choices = chunk.get("choices") or []
    content = choices[0].get("delta", {}).get("content") if choices else None
    return content if isinstance(content, str) else ""
