"""Anomaly detection over query latency and error rate.

Queries are grouped into fixed time buckets (``bucket_s``); each closed bucket gives one
value per series: the mean latency of successful retrieval-only queries, the mean latency
of successful generating queries, and the share of queries that failed. Each value is
scored against the series' previous ``window`` bucket values with a robust z-score,

    score = (value - median) / max(1.4826 * MAD, floor)

where MAD is the median absolute deviation (1.4826 * MAD estimates the standard deviation
of normal noise) and ``floor`` keeps a perfectly steady series from alerting on noise.
Only increases alert (slower or more failures); ``persistence`` consecutive buckets above
``threshold`` raise an alert and as many below it clear it, so one slow bucket never alerts.
Every value joins the window, alerting or not: a lasting shift alerts until it is the
window's majority, then it is the new normal.
"""

from __future__ import annotations

import logging
import math
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from xnai.domain.metrics import Metrics

log = logging.getLogger("xnai.anomaly")

LATENCY_RETRIEVAL = "query_latency_retrieval"
LATENCY_ANSWER = "query_latency_answer"
ERROR_RATE = "query_error_rate"
SERIES = (LATENCY_RETRIEVAL, LATENCY_ANSWER, ERROR_RATE)

OK, ALERTING = "ok", "alerting"
MAD_TO_SIGMA = 1.4826  # the standard deviation of normal noise is 1.4826 x its MAD


@dataclass(frozen=True, slots=True)
class Floor:
    """The smallest noise scale of a series: ``absolute``, or ``relative`` x the median."""

    absolute: float
    relative: float = 0.0

    def of(self, median: float) -> float:
        """The floor at a given median."""
        return max(self.absolute, self.relative * abs(median))


# A latency must rise by at least threshold x 10 % of its median (35 % at 3.5) to alert;
# an error rate by threshold x 5 percentage points (17.5 points at 3.5).
LATENCY_FLOOR = Floor(absolute=0.001, relative=0.10)
ERROR_FLOOR = Floor(absolute=0.05)


@dataclass(frozen=True, slots=True)
class AnomalyPolicy:
    """Knobs of the detector (``enterprise.monitoring.anomaly_*`` in the configuration)."""

    bucket_s: float = 10.0
    window: int = 90
    min_samples: int = 12
    threshold: float = 3.5
    persistence: int = 3

    def __post_init__(self) -> None:
        if self.bucket_s <= 0 or self.window < 3 or self.persistence < 1:
            raise ValueError("bucket_s > 0, window >= 3 and persistence >= 1 are required")
        if not 2 <= self.min_samples <= self.window:
            raise ValueError("min_samples must be between 2 and window")

    def as_dict(self) -> dict[str, Any]:
        """The policy as JSON."""
        return {
            "method": "robust z-score (median and MAD over a rolling window of buckets)",
            "bucket_s": self.bucket_s,
            "window": self.window,
            "min_samples": self.min_samples,
            "threshold": self.threshold,
            "persistence": self.persistence,
        }


@dataclass(slots=True)
class SeriesStatus:
    """The alert state of one series."""

    series: str
    state: str = OK
    since: float | None = None  # when the state last changed (epoch seconds)
    value: float | None = None  # the last bucket's value
    score: float = 0.0  # the last bucket's robust z-score
    threshold: float = 0.0
    baseline: float | None = None  # the window's median before the last value
    samples: int = 0  # values in the window

    def as_dict(self) -> dict[str, Any]:
        """The state as JSON (``since`` in ISO 8601, UTC)."""
        return {
            "series": self.series,
            "state": self.state,
            "since": _iso(self.since),
            "value": self.value,
            "score": round(self.score, 3),
            "threshold": self.threshold,
            "baseline": self.baseline,
            "samples": self.samples,
        }


def _iso(stamp: float | None) -> str | None:
    if stamp is None:
        return None
    return datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds")


class RobustDetector:
    """Robust z-scores of one series with alerting by persistence (see the module doc)."""

    def __init__(self, series: str, policy: AnomalyPolicy, floor: Floor) -> None:
        self.policy = policy
        self.floor = floor
        self.window: deque[float] = deque(maxlen=policy.window)
        self.status = SeriesStatus(series, threshold=policy.threshold)
        self._run = 0  # consecutive buckets that disagree with the current state

    def score(self, value: float) -> tuple[float, float | None]:
        """The robust z-score of ``value`` against the window, and the window's median;
        (0, None) while the window holds fewer than ``min_samples`` values."""
        if len(self.window) < self.policy.min_samples:
            return 0.0, None
        median = statistics.median(self.window)
        mad = statistics.median(abs(v - median) for v in self.window)
        scale = max(MAD_TO_SIGMA * mad, self.floor.of(median))
        return (value - median) / scale, median

    def update(self, value: float, at: float) -> str | None:
        """Score one bucket value, add it to the window and move the alert state;
        returns the new state when it changed."""
        if not math.isfinite(value):
            return None
        score, median = self.score(value)
        self.window.append(value)
        s = self.status
        s.value, s.score, s.baseline, s.samples = value, score, median, len(self.window)
        if s.since is None:
            s.since = at
        anomalous = score > self.policy.threshold
        if anomalous == (s.state == ALERTING):
            self._run = 0
            return None
        self._run += 1
        if self._run < self.policy.persistence:
            return None
        self._run = 0
        s.state, s.since = (ALERTING if anomalous else OK), at
        return s.state


@dataclass(slots=True)
class _Bucket:
    """What one time bucket has seen so far."""

    queries: int = 0
    errors: int = 0
    latency: dict[str, list[float]] = field(default_factory=dict)

    def add(self, series: str, seconds: float, error: bool) -> None:
        self.queries += 1
        if error:
            self.errors += 1
        else:
            total = self.latency.setdefault(series, [0.0, 0.0])
            total[0] += seconds
            total[1] += 1

    def values(self) -> dict[str, float]:
        out = {name: s / n for name, (s, n) in self.latency.items() if n}
        if self.queries:
            out[ERROR_RATE] = self.errors / self.queries
        return out


class AnomalyWatch:
    """Watches the query path: feed it every query, read alert states and scores.

    Thread-safe; time comes from ``clock`` (epoch seconds), so tests need no sleeping.
    Buckets without queries are skipped, not scored as zero: an idle night is no anomaly.
    """

    def __init__(
        self,
        policy: AnomalyPolicy | None = None,
        clock: Callable[[], float] = time.time,
        history: int = 100,
    ) -> None:
        self.policy = policy or AnomalyPolicy()
        self.clock = clock
        floors = {LATENCY_RETRIEVAL: LATENCY_FLOOR, LATENCY_ANSWER: LATENCY_FLOOR}
        self.detectors = {
            name: RobustDetector(name, self.policy, floors.get(name, ERROR_FLOOR))
            for name in SERIES
        }
        self._history: deque[dict[str, Any]] = deque(maxlen=history)
        self._lock = threading.Lock()
        self._bucket_no: int | None = None
        self._bucket = _Bucket()

    def observe_query(self, seconds: float, *, error: bool, generate: bool) -> None:
        """One finished query: its latency, whether it failed, whether it generated."""
        series = LATENCY_ANSWER if generate else LATENCY_RETRIEVAL
        with self._lock:
            self._roll(self.clock())
            self._bucket.add(series, max(seconds, 0.0), error)

    def status(self) -> list[SeriesStatus]:
        """Every series' state, after closing the buckets that have ended."""
        with self._lock:
            self._roll(self.clock())
            return [_copy(d.status) for d in self.detectors.values()]

    def alerting(self) -> list[SeriesStatus]:
        """The series that are alerting now."""
        return [s for s in self.status() if s.state == ALERTING]

    def history(self) -> list[dict[str, Any]]:
        """Recent alert transitions (raised and cleared), oldest first."""
        with self._lock:
            return list(self._history)

    def publish(self, metrics: Metrics) -> None:
        """Set ``xoe_anomaly_score{series}`` to each series' latest score."""
        for s in self.status():
            metrics.set("xoe_anomaly_score", s.score, series=s.series)

    def _roll(self, now: float) -> None:
        number = math.floor(now / self.policy.bucket_s)
        if self._bucket_no is None:
            self._bucket_no = number
        if number <= self._bucket_no:  # same bucket (or a clock that stepped back)
            return
        ended = (self._bucket_no + 1) * self.policy.bucket_s
        for name, value in self._bucket.values().items():
            changed = self.detectors[name].update(value, ended)
            if changed is not None:
                self._note(self.detectors[name].status, ended)
        self._bucket_no, self._bucket = number, _Bucket()

    def _note(self, s: SeriesStatus, at: float) -> None:
        event = {
            "series": s.series,
            "state": s.state,
            "at": _iso(at),
            "value": s.value,
            "score": round(s.score, 3),
            "baseline": s.baseline,
        }
        self._history.append(event)
        extra = {k: v for k, v in event.items() if k != "state"}
        if s.state == ALERTING:
            log.warning("anomaly alert raised on %s", s.series, extra={"anomaly": extra})
        else:
            log.info("anomaly alert cleared on %s", s.series, extra={"anomaly": extra})


def _copy(s: SeriesStatus) -> SeriesStatus:
    return SeriesStatus(
        s.series, s.state, s.since, s.value, s.score, s.threshold, s.baseline, s.samples
    )
