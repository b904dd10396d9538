"""Chat model behind an OpenAI-compatible HTTP server (Ollama, llama-server, vLLM, ...)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from xnai.domain.errors import ModelError, ModelServerError, ModelUnavailableError
from xnai.domain.models import ChatMessage

_BODY_EXCERPT = 300
# Statuses that mean "the backend is not there right now", worth retrying later.
_UNAVAILABLE_STATUSES = frozenset({502, 503, 504})


class OpenAIChatModel:
    """Streams chat completions from ``{base_url}/chat/completions`` over SSE."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "",
        timeout_s: float = 120.0,
        context_size: int = 4096,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.name = model
        self.context_size = context_size
        self._url = base_url.rstrip("/") + "/chat/completions"
        headers = {"Accept": "text/event-stream"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        # Connecting should fail fast; reading may legitimately wait for a slow first token.
        timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0))
        self._client = httpx.Client(headers=headers, timeout=timeout, transport=transport)

    def count_tokens(self, text: str) -> int:
        """Estimate (~4 characters a token): the server's tokenizer is remote."""
        return len(text) // 4 + 1

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: Sequence[str] = (),
    ) -> Iterator[str]:
        """Yield content deltas; ModelUnavailableError when unreachable, else ModelError."""
        payload = _request_body(self.name, messages, max_tokens, temperature, stop)
        try:
            with self._client.stream("POST", self._url, json=payload) as response:
                _raise_for_status(response, self._url)
                yield from _content_deltas(response.iter_lines())
        except httpx.TransportError as exc:
            raise ModelUnavailableError(
                f"cannot reach the model server at {self._url}: {type(exc).__name__}: {exc}"
            ) from exc

    def close(self) -> None:
        """Close the pooled HTTP connections."""
        self._client.close()


def _request_body(
    model: str,
    messages: Sequence[ChatMessage],
    max_tokens: int,
    temperature: float,
    stop: Sequence[str],
) -> dict[str, Any]:
    """JSON body of a streaming chat completion request."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": m.role, "content": m.content} for m in messages],
        "stream": True,
        "max_tokens": max_tokens,
        "temperature": temperature,
    }
    if stop:
        body["stop"] = list(stop)
    return body


def _raise_for_status(response: httpx.Response, url: str) -> None:
    """ModelError naming the status and the start of the body for any 4xx/5xx reply: a 4xx is
    a plain ModelError (never retried), a 5xx a transient one."""
    if response.status_code < 400:
        return
    excerpt = response.read().decode("utf-8", "replace")[:_BODY_EXCERPT].strip()
    message = f"model server {url} answered HTTP {response.status_code}: {excerpt}"
    if response.status_code in _UNAVAILABLE_STATUSES:
        raise ModelUnavailableError(message)
    if response.status_code >= 500:
        raise ModelServerError(message)
    raise ModelError(message)


def _content_deltas(lines: Iterator[str]) -> Iterator[str]:
    """Content pieces from SSE ``data:`` lines, up to ``[DONE]``."""
    for line in lines:
        if not line.startswith("data:"):
            continue  # blank separators, comments, "event:" and "id:" fields
        data = line[len("data:") :].strip()
        if data == "[DONE]":
            return
        piece = _delta_content(_parse_event(data))
        if piece:
            yield piece


def _parse_event(data: str) -> dict[str, Any]:
    """Decode one event's JSON; ModelError for garbage or an in-stream error object."""
    try:
        event = json.loads(data)
    except json.JSONDecodeError as exc:
        raise ModelError(f"model server sent invalid JSON: {data[:_BODY_EXCERPT]}") from exc
    if not isinstance(event, dict):
        raise ModelError(f"model server sent an unexpected event: {data[:_BODY_EXCERPT]}")
    if "error" in event:
        raise ModelError(f"model server reported an error: {json.dumps(event['error'])[:300]}")
    return event


def _delta_content(event: dict[str, Any]) -> str:
    """The text delta of a chunk ("" for role-only, empty or final chunks)."""
    choices = event.get("choices") or []
    if not choices:
        return ""
    delta = choices[0].get("delta") or {}
    content = delta.get("content")
    return content if isinstance(content, str) else ""
