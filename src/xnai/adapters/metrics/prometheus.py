"""The ``Metrics`` port over prometheus_client, in a registry of its own.

Each container gets its own ``CollectorRegistry`` (never the process-global one), so several
containers can live in one process. Every catalogue entry becomes a collector; the system
figures and any gauge given a reader with ``read_at_scrape`` are read when scraped instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from xnai.adapters.metrics import port as port_server
from xnai.adapters.metrics.system import SystemReader
from xnai.domain.metrics import CATALOGUE, SPECS, MetricSpec, catalogued

log = logging.getLogger("xnai.metrics")

Reader = Callable[[], float | None]


class ReadAtScrape(Collector):
    """One unlabelled gauge or counter whose value is read when the registry is scraped."""

    def __init__(self, spec: MetricSpec, read: Reader) -> None:
        self.spec = spec
        self.read = read

    def _family(self, value: float | None) -> Metric:
        if self.spec.kind == "counter":
            return CounterMetricFamily(self.spec.name, self.spec.help, value=value)
        return GaugeMetricFamily(self.spec.name, self.spec.help, value=value)

    def describe(self) -> Iterator[Metric]:
        """The family without samples (lets the registry refuse duplicate names)."""
        yield self._family(None)

    def collect(self) -> Iterator[Metric]:
        """The family with the value read now; left out when it cannot be read."""
        try:
            value = self.read()
        except Exception:  # one unreadable figure must not fail the whole scrape
            log.warning("could not read %s", self.spec.name, exc_info=True)
            return
        if value is not None:
            yield self._family(value)


def _collector(spec: MetricSpec, registry: CollectorRegistry) -> Any:
    labels = list(spec.labels)
    if spec.kind == "counter":
        return Counter(spec.name, spec.help, labels, registry=registry)
    if spec.kind == "gauge":
        return Gauge(spec.name, spec.help, labels, registry=registry)
    if spec.kind == "histogram":
        buckets = spec.buckets or Histogram.DEFAULT_BUCKETS
        return Histogram(spec.name, spec.help, labels, registry=registry, buckets=buckets)
    raise ValueError(f"{spec.name}: unknown metric kind {spec.kind!r}")


class PrometheusMetrics:
    """Reports to a private registry; refuses names and labels the catalogue does not declare."""

    def __init__(self, data_dir: Path, *, proc: Path = Path("/proc")) -> None:
        self.registry = CollectorRegistry()
        self._collectors: dict[str, Any] = {}
        self._scraped: dict[str, ReadAtScrape] = {}
        system = SystemReader(data_dir, proc).readers()
        for spec in CATALOGUE:
            if spec.name in system:
                self._add_reader(spec, system[spec.name])
            else:
                self._collectors[spec.name] = _collector(spec, self.registry)

    def _add_reader(self, spec: MetricSpec, read: Reader) -> None:
        collector = ReadAtScrape(spec, read)
        self.registry.register(collector)
        self._scraped[spec.name] = collector

    def _child(self, name: str, kind: str, labels: dict[str, str]) -> Any:
        catalogued(name, kind, labels)
        if name in self._scraped:
            raise ValueError(f"{name} is read when scraped; it cannot be reported")
        collector = self._collectors[name]
        return collector.labels(**labels) if labels else collector

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        """Add to a counter."""
        self._child(name, "counter", labels).inc(amount)

    def set(self, name: str, value: float, **labels: str) -> None:
        """Set a gauge."""
        self._child(name, "gauge", labels).set(value)

    def observe(self, name: str, value: float, **labels: str) -> None:
        """Record one value of a histogram."""
        self._child(name, "histogram", labels).observe(value)

    def read_at_scrape(self, name: str, read: Reader) -> None:
        """Serve an unlabelled catalogue gauge from ``read`` at every scrape from now on
        (replacing its reported value or an earlier reader)."""
        spec = SPECS.get(name)
        if spec is None or spec.kind != "gauge" or spec.labels:
            raise ValueError(f"{name} is not an unlabelled gauge of the metric catalogue")
        if name in self._scraped:
            self.registry.unregister(self._scraped.pop(name))
        else:
            self.registry.unregister(self._collectors.pop(name))
        self._add_reader(spec, read)

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """Every metric in the format the ``Accept`` header asks for (default: the text
        exposition format), and its content type."""
        encode, content_type = choose_encoder(accept or "")
        return encode(self.registry), content_type

    def serve(self, host: str, port: int, token: str = "") -> Callable[[], None]:
        """Serve the registry over HTTP on ``host:port`` in a background thread (only to
        callers sending ``token`` as a bearer token when it is set); returns the function
        that stops it."""
        return port_server.serve(self.registry, host, port, token)
