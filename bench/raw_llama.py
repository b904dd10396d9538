"""Raw llama-cpp-python on the exact prompt the service sends (run by bench/run.py).

Runs in its own process, after the server has stopped, so the two never share the CPUs.
Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any


def _messages(prepared: Any) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in prepared.messages]


def timed_stream(llm: Any, messages: list[dict[str, str]], max_tokens: int) -> dict[str, Any]:
    """One streamed completion: time to first token, token count, decode rate."""
    started = time.perf_counter()
    stamps: list[float] = []
    parts: list[str] = []
    chunks = llm.create_chat_completion(
        messages=messages, max_tokens=max_tokens, temperature=0.1, stream=True, seed=0
    )
    for chunk in chunks:
        choices = chunk.get("choices") or []
        content = choices[0].get("delta", {}).get("content") if choices else None
        if isinstance(content, str) and content:
            stamps.append(time.perf_counter())
            parts.append(content)
    return run_record(started, stamps, "".join(parts))


def run_record(started: float, stamps: list[float], text: str) -> dict[str, Any]:
    """Timings of one generation from the token arrival times."""
    tokens = len(stamps)
    decode_s = stamps[-1] - stamps[0] if tokens > 1 else 0.0
    return {
        "tokens": tokens,
        "time_to_first_token_s": (stamps[0] - started) if stamps else None,
        "decode_s": decode_s,
        "tokens_per_s": (tokens - 1) / decode_s if decode_s > 0 else None,
        "total_s": (stamps[-1] - started) if stamps else None,
        "text": text,
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over runs of the per-run numbers."""

    def median(key: str) -> float | None:
        values = [r[key] for r in runs if r.get(key) is not None]
        return statistics.median(values) if values else None

    return {
        "tokens_per_s": median("tokens_per_s"),
        "time_to_first_token_s": median("time_to_first_token_s"),
        "tokens": median("tokens"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--question", required=True)
    parser.add_argument("--flush-question", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()

    import llama_cpp

    from xnai.bootstrap import build, model_path
    from xnai.config import load_settings
    from xnai.domain.access import AccessScope
    from xnai.domain.models import SearchMode

    settings = load_settings(args.config, storage={"data_dir": args.data_dir})
    container = build(settings)
    container.startup.open_index()
    rag = settings.rag

    def prepare(question: str, max_tokens: int) -> Any:
        # The retrieval and prompt POST /v1/query prepares (through the ask service).
        return container.answers.prepare(
            question,
            scope=AccessScope.everything(),
            mode=SearchMode(rag.mode),
            top_k=rag.top_k,
            max_tokens=max_tokens,
        )

    prepared = prepare(args.question, args.max_tokens)
    flush = prepare(args.flush_question, 1)
    # prepare() loaded the service's model to count tokens: free it before loading ours.
    loaded = container.model.load()
    close = getattr(loaded, "close", None)
    if close is not None:
        close()
    path = model_path(settings)
    messages = _messages(prepared)

    load_started = time.perf_counter()
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=4096, n_threads=2, n_batch=512, verbose=False)
    load_s = time.perf_counter() - load_started
    # The same warm-up the service does (services.startup.Startup.warm_up): one token of "Hi".
    for _ in llm.create_chat_completion(
        messages=[{"role": "user", "content": "Hi"}], max_tokens=1, stream=True
    ):
        break
    runs: list[dict[str, Any]] = []
    for i in range(args.runs):
        if i:
            # Evict the KV prefix of the previous run so every run evaluates its prompt.
            timed_stream(llm, _messages(flush), 1)
        runs.append(timed_stream(llm, messages, args.max_tokens))
    rendered = "".join(m["content"] for m in messages)
    result = {
        "model_file": path.name,
        "load_s": load_s,
        "grounded": prepared.grounded,
        "citations": [c.chunk_id for c in prepared.citations],
        "messages_sha256": hashlib.sha256(
            json.dumps(messages, sort_keys=True).encode("utf-8")
        ).hexdigest(),
        "prompt_content_tokens": len(llm.tokenize(rendered.encode("utf-8"), add_bos=False)),
        "runs": runs,
        **summarise(runs),
    }
    llm.close()
    container.close()
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
