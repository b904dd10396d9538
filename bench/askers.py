"""Askers over HTTP: streamed ``POST /v1/query`` requests, one after another or several at
once, timed as a user sees them: the sources event, the first token, the whole answer.

Used by the generation section (time to first token and to the sources, over labelled
claims) and the answers section (answers per minute with several concurrent askers).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.metrics import percentile


@dataclass
class Asked:
    """One streamed question: HTTP status, timings (seconds from the request) and text."""

    question: str
    status: int = 0
    sources_s: float | None = None
    first_token_s: float | None = None
    total_s: float = 0.0
    tokens: int = 0
    text: str = ""
    sources: list[str] = field(default_factory=list)
    retry_after: str | None = None
    error: str | None = None

    @property
    def answered(self) -> bool:
        """A 200 whose stream ended with the answer."""
        return self.status == 200 and self.error is None


async def ask(client: Any, url: str, question: str, max_tokens: int) -> Asked:
    """One ``POST /v1/query`` with ``stream: true``, read to its end."""
    out = Asked(question)
    body = {"query": question, "max_tokens": max_tokens, "stream": True}
    started = time.perf_counter()
    parts: list[str] = []
    event = ""
    async with client.stream("POST", url, json=body) as resp:
        out.status = resp.status_code
        if resp.status_code != 200:
            out.retry_after = resp.headers.get("Retry-After")
            out.error = (await resp.aread()).decode(errors="replace")[:300]
        else:
            async for line in resp.aiter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                    continue
                if not line.startswith("data:"):
                    continue
                data = json.loads(line[5:])
                now = time.perf_counter() - started
                if event == "sources" and out.sources_s is None:
                    out.sources_s = now
                    out.sources = [str(s.get("chunk_id")) for s in data.get("sources", [])]
                elif event == "token":
                    piece = data.get("text", "")
                    if out.first_token_s is None and piece.strip():
                        out.first_token_s = now
                    parts.append(piece)
                    out.tokens += 1
                elif event == "error":
                    out.error = json.dumps(data)[:300]
    out.total_s = time.perf_counter() - started
    out.text = "".join(parts)
    return out


async def ask_all(
    url: str, questions: Sequence[str], clients: int, max_tokens: int, headers: dict[str, str]
) -> tuple[list[Asked], float]:
    import httpx

    queue: asyncio.Queue[str] = asyncio.Queue()
    for q in questions:
        queue.put_nowait(q)
    done: list[Asked] = []

    async def client_loop() -> None:
        async with httpx.AsyncClient(timeout=900, headers=headers) as client:
            while True:
                try:
                    question = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                try:
                    done.append(await ask(client, url, question, max_tokens))
                except httpx.HTTPError as exc:
                    done.append(Asked(question, error=f"{type(exc).__name__}: {exc}"))

    started = time.perf_counter()
    await asyncio.gather(*(client_loop() for _ in range(clients)))
    return done, time.perf_counter() - started


def run(
    url: str,
    questions: Sequence[str],
    *,
    clients: int,
    max_tokens: int,
    headers: dict[str, str],
) -> dict[str, Any]:
    """``clients`` askers in a closed loop over ``questions`` (each asked once)."""
    asked, wall = asyncio.run(ask_all(url, questions, clients, max_tokens, headers))
    return summary(asked, wall, clients)


def summary(asked: Sequence[Asked], wall_s: float, clients: int) -> dict[str, Any]:
    """Answers per minute, time to the sources and to the first token, statuses."""
    answered = [a for a in asked if a.answered]
    firsts = [a.first_token_s for a in answered if a.first_token_s is not None]
    sources = [a.sources_s * 1000 for a in answered if a.sources_s is not None]
    totals = [a.total_s for a in answered]
    statuses: dict[str, int] = {}
    for a in asked:
        statuses[str(a.status)] = statuses.get(str(a.status), 0) + 1
    return {
        "clients": clients,
        "questions": len(asked),
        "answered": len(answered),
        "wall_s": wall_s,
        "answers_per_minute": 60 * len(answered) / wall_s if wall_s > 0 else None,
        "time_to_first_token_s_p50": percentile(firsts, 50) if firsts else None,
        "time_to_first_token_s_p95": percentile(firsts, 95) if firsts else None,
        "sources_first_ms_p50": percentile(sources, 50) if sources else None,
        "sources_first_ms_p95": percentile(sources, 95) if sources else None,
        "total_s_p50": percentile(totals, 50) if totals else None,
        "total_s_p95": percentile(totals, 95) if totals else None,
        "statuses": statuses,
        "errors": [a.error for a in asked if a.error][:5],
    }
