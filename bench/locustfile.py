"""Load test of ``xnai serve`` over HTTP: retrieval-only and end-to-end queries (locust).

    XNAI_API_KEY=xnai_... locust -f bench/locustfile.py --headless -u 50 -r 10 -t 30s \\
        --host http://127.0.0.1:8000

Refuses to run against a host that is not a loopback address, without ``--headless`` or
without ``--run-time`` (at most 30 minutes): it is a benchmark of this machine, not a tool
to load someone else's server. ``bench/run.py --only load`` starts the server and runs it.

Environment:

- ``XNAI_API_KEY`` (required): an API key; every query needs credentials.
- ``XNAI_LOAD_QUERIES``: a file of questions, one per line (default: a few built in).
- ``XNAI_LOAD_MAX_TOKENS``: answer length of end-to-end queries (default 32).
- ``XNAI_LOAD_RETRIEVAL_WEIGHT`` / ``XNAI_LOAD_ANSWER_WEIGHT``: the mix of the two kinds of
  users (default 4 / 1).
- ``XNAI_LOAD_THINK_S``: the wait between one user's queries, ``MIN-MAX`` seconds (default
  ``0.5-2``, a person skimming results; ``30-60`` is a person reading each answer in a chat).

A 429 (the service sheds load: the expected wait exceeds what a caller would accept) is a
failure named "429 with Retry-After" when it says when to come back, and "429 without
Retry-After" otherwise, so refusals and unexpected errors are counted apart.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from locust import HttpUser, between, events, task

MAX_RUN_TIME_S = 30 * 60
DEFAULT_QUESTIONS = (
    "How do I change the port the server listens on?",
    "Which environment variables override the configuration file?",
    "How are documents encrypted at rest?",
    "What happens when the language model fails?",
    "How do I create an API key?",
    "Which roles exist and what may each do?",
    "How is the audit log protected against tampering?",
    "How do I ingest a folder of PDF files?",
)


def questions() -> list[str]:
    """The questions to ask, from ``XNAI_LOAD_QUERIES`` or the built-in list."""
    path = os.environ.get("XNAI_LOAD_QUERIES")
    if path:
        found = [q.strip() for q in Path(path).read_text(encoding="utf-8").splitlines()]
        found = [q for q in found if q]
        if found:
            return found
    return list(DEFAULT_QUESTIONS)


def is_loopback(url: str) -> bool:
    """Whether every address ``url``'s host resolves to is a loopback address."""
    host = urlsplit(url).hostname
    if not host:
        return False
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def refusal(host: str | None, options: Any) -> str | None:
    """Why this run must not start (None when it may)."""
    if not os.environ.get("XNAI_API_KEY"):
        return "set XNAI_API_KEY to an API key (xnai_...)"
    if not host or not is_loopback(host):
        return f"--host must be a loopback address such as http://127.0.0.1:8000, not {host!r}"
    if options is not None and not getattr(options, "worker", False):
        if not getattr(options, "headless", False):
            return "run with --headless (no web interface)"
        run_time = getattr(options, "run_time", None)
        if not run_time or run_time > MAX_RUN_TIME_S:
            return f"give --run-time (at most {MAX_RUN_TIME_S // 60} minutes)"
    return None


@events.init.add_listener
def _check(environment: Any, **_: Any) -> None:
    reason = refusal(environment.host, environment.parsed_options)
    if reason:
        raise SystemExit(f"bench/locustfile.py: {reason}")  # locust exits on init errors


_QUESTIONS = itertools.cycle(questions())
REFUSED = "429 with Retry-After"


def think_time(text: str | None) -> tuple[float, float]:
    """``MIN-MAX`` seconds between one user's queries (``0.5-2`` when not set)."""
    if not text:
        return (0.5, 2.0)
    low, sep, high = text.partition("-")
    try:
        bounds = (float(low), float(high if sep else low))
    except ValueError:
        raise SystemExit(f"XNAI_LOAD_THINK_S must be MIN-MAX seconds, not {text!r}") from None
    if not 0 <= bounds[0] <= bounds[1]:
        raise SystemExit(f"XNAI_LOAD_THINK_S must be MIN-MAX with 0 <= MIN <= MAX, not {text!r}")
    return bounds


def refusal_name(retry_after: str | None) -> str:
    """How a 429 is counted: with a usable Retry-After (whole seconds) or without."""
    if retry_after and retry_after.strip().isdigit():
        return REFUSED
    return "429 without Retry-After"


class QueryUser(HttpUser):
    """Common parts: credentials, think time, the question cycle, outcome naming."""

    abstract = True
    wait_time = between(*think_time(os.environ.get("XNAI_LOAD_THINK_S")))

    def on_start(self) -> None:
        """Every request carries the API key."""
        self.client.headers["Authorization"] = f"Bearer {os.environ['XNAI_API_KEY']}"

    def ask(self, name: str, body: dict[str, Any]) -> None:
        """POST /v1/query; anything but a 200 with a JSON body is a failure."""
        with self.client.post("/v1/query", json=body, name=name, catch_response=True) as r:
            if r.status_code == 429:
                r.failure(refusal_name(r.headers.get("Retry-After")))
            elif r.status_code != 200:
                r.failure(f"HTTP {r.status_code}")
            else:
                try:
                    r.json()["sources"]
                except (ValueError, KeyError, TypeError):
                    r.failure("200 without an answer body")


class RetrievalUser(QueryUser):
    """Retrieval-only queries: sources, no generation."""

    weight = int(os.environ.get("XNAI_LOAD_RETRIEVAL_WEIGHT", "4"))

    @task
    def retrieve(self) -> None:
        """One retrieval-only query."""
        self.ask("retrieval", {"query": next(_QUESTIONS), "top_k": 10, "generate": False})


class AnswerUser(QueryUser):
    """End-to-end queries: retrieval, prompt and a short generated answer."""

    weight = int(os.environ.get("XNAI_LOAD_ANSWER_WEIGHT", "1"))

    @task
    def answer(self) -> None:
        """One query answered by the language model."""
        max_tokens = int(os.environ.get("XNAI_LOAD_MAX_TOKENS", "32"))
        self.ask("answer", {"query": next(_QUESTIONS), "max_tokens": max_tokens})
