"""An in-memory ``Metrics`` that keeps every value: for tests and processes without Prometheus."""

from __future__ import annotations

import threading
from collections import defaultdict

from xnai.domain.metrics import catalogued


def _key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


class RecordingMetrics:
    """Keeps every value; refuses names and labels the catalogue does not declare."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
        self.gauges: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
        self.observations: dict[str, list[tuple[tuple[tuple[str, str], ...], float]]] = defaultdict(
            list
        )

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        """Add to a counter."""
        catalogued(name, "counter", labels)
        with self._lock:
            series = self.counters[name]
            series[_key(labels)] = series.get(_key(labels), 0.0) + amount

    def set(self, name: str, value: float, **labels: str) -> None:
        """Set a gauge."""
        catalogued(name, "gauge", labels)
        with self._lock:
            self.gauges[name][_key(labels)] = value

    def observe(self, name: str, value: float, **labels: str) -> None:
        """Record a histogram value."""
        catalogued(name, "histogram", labels)
        with self._lock:
            self.observations[name].append((_key(labels), value))

    def value(self, name: str, **labels: str) -> float:
        """A counter's or gauge's current value (0 when never set)."""
        key = _key(labels)
        return self.counters.get(name, {}).get(key, self.gauges.get(name, {}).get(key, 0.0))
