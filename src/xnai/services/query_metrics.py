"""Query metrics: latency, count, best source score, recall and answer quality per query."""

from __future__ import annotations

import threading
import time
from collections import deque

from xnai.domain.metrics import Metrics
from xnai.domain.models import Answer

RECENT_QUERIES = 100  # recall and quality are shares of this many most recent queries
NO_RETRIEVAL = "none"  # the mode label of a question the model answers without sources


class RecentShare:
    """The share of true outcomes among the last ``size``."""

    def __init__(self, size: int = RECENT_QUERIES) -> None:
        self._outcomes: deque[bool] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, outcome: bool) -> float:
        """Add one outcome; the share after it."""
        with self._lock:
            self._outcomes.append(outcome)
            return sum(self._outcomes) / len(self._outcomes)


class QueryMetrics:
    """Reports each answered query: latency, count, best source score, recall and answer
    quality (the model's own time is reported where the model is called)."""

    def __init__(self, metrics: Metrics, *, default_mode: str, min_score: float) -> None:
        self.metrics = metrics
        self.default_mode = default_mode
        self.min_score = min_score
        self._recall = RecentShare()
        self._quality = RecentShare()

    def answered(
        self,
        answer: Answer,
        *,
        started: float,
        intent: str,
        component: str = "api",
        mode: str | None = None,
        generate: bool = True,
    ) -> None:
        """Report one query that began at ``started`` (``time.perf_counter``); ``intent``
        e.g. ``answer``, ``retrieval``, ``chat``; ``component`` the entry point that asked.
        The mode ``none`` marks an answer without retrieval: it has no recall or quality."""
        m, mode = self.metrics, mode or self.default_mode
        elapsed = time.perf_counter() - started
        m.observe("xoe_query_latency_seconds", elapsed, mode=mode, generate=str(generate).lower())
        m.inc("xoe_query_count_total", intent=intent, component=component)
        if mode == NO_RETRIEVAL:
            return
        if answer.citations:
            m.observe("xoe_relevance_score", max(c.score for c in answer.citations))
        m.set("xoe_recall_rate", self._recall.add(self.relevant(answer, mode, generate)))
        if generate:
            m.set("xoe_response_quality_score", self._quality.add(answer.grounded))

    def relevant(self, answer: Answer, mode: str, generate: bool) -> bool:
        """Whether a query found at least one source above ``rag.min_score``.

        A generated answer only quotes sources when the best dense score reaches the
        threshold; dense scores of retrieval-only queries are compared here. Fused and BM25
        scores are not on that scale, so any source counts for them."""
        if not answer.citations:
            return False
        if generate or mode != "dense":
            return True
        return max(c.score for c in answer.citations) >= self.min_score
