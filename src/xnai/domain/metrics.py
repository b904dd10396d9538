"""The metric catalogue and the port services report through (Prometheus is an adapter).

Names carry the ``xoe_`` prefix. Label values must come from small fixed sets (component
names, modes, status classes): never user ids, usernames, query text or paths.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric: its kind (counter, gauge, histogram), help text and label names."""

    name: str
    kind: str
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None


LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

CATALOGUE: tuple[MetricSpec, ...] = (
    MetricSpec("xoe_cpu_usage_percent", "gauge", "CPU use of the machine, percent"),
    MetricSpec("xoe_memory_usage_bytes", "gauge", "Resident memory of the process, bytes"),
    MetricSpec("xoe_disk_usage_percent", "gauge", "Use of the data directory's disk, percent"),
    MetricSpec("xoe_network_rx_bytes_total", "counter", "Bytes received by the machine"),
    MetricSpec("xoe_network_tx_bytes_total", "counter", "Bytes sent by the machine"),
    MetricSpec(
        "xoe_query_latency_seconds",
        "histogram",
        "Time to answer a query, seconds",
        ("mode", "generate"),
        LATENCY_BUCKETS,
    ),
    MetricSpec("xoe_query_count_total", "counter", "Queries answered", ("intent", "component")),
    MetricSpec(
        "xoe_model_inference_time_seconds",
        "histogram",
        "Time the language model took per answer, seconds",
        ("backend",),
        LATENCY_BUCKETS,
    ),
    MetricSpec("xoe_recall_rate", "gauge", "Share of queries with at least one relevant source"),
    MetricSpec(
        "xoe_relevance_score",
        "histogram",
        "Best source score per query",
        (),
        (
            0.1,
            0.2,
            0.3,
            0.4,
            0.5,
            0.6,
            0.7,
            0.8,
            0.9,
            1.0,
        ),
    ),
    MetricSpec("xoe_component_health_status", "gauge", "1 healthy, 0 unhealthy", ("component",)),
    MetricSpec("xoe_circuit_breaker_state", "gauge", "0 closed, 1 open, 2 half-open", ("backend",)),
    MetricSpec(
        "xoe_wasm_component_count",
        "gauge",
        "Loaded adapter components (loaders, indexes, model backends); no WebAssembly is used",
    ),
    MetricSpec("xoe_active_users", "gauge", "Users with a request in the last 15 minutes"),
    MetricSpec(
        "xoe_response_quality_score", "gauge", "Share of recent answers grounded in sources"
    ),
    MetricSpec("xoe_error_count_total", "counter", "Errors", ("component", "type")),
    MetricSpec("xoe_uptime_seconds", "gauge", "Seconds since the process started"),
    MetricSpec("xoe_security_violation_total", "counter", "Denied or failed access", ("kind",)),
    MetricSpec(
        "xoe_http_requests_total", "counter", "HTTP requests", ("method", "route", "status")
    ),
    MetricSpec(
        "xoe_http_request_duration_seconds",
        "histogram",
        "HTTP request duration, seconds",
        ("method", "route"),
        LATENCY_BUCKETS,
    ),
    MetricSpec("xoe_anomaly_score", "gauge", "Anomaly score of a watched series", ("series",)),
    MetricSpec("xoe_ingest_chunks_total", "counter", "Chunks committed by ingests"),
    MetricSpec("xoe_ingest_documents_total", "counter", "Documents ingested", ("result",)),
    MetricSpec("xoe_generation_queue_depth", "gauge", "Generation requests waiting or running"),
    MetricSpec("xoe_generation_rejected_total", "counter", "Generations refused: queue full"),
    MetricSpec("xoe_cache_requests_total", "counter", "Answer cache lookups", ("result",)),
)

SPECS: dict[str, MetricSpec] = {spec.name: spec for spec in CATALOGUE}


def catalogued(name: str, kind: str, labels: Iterable[str]) -> MetricSpec:
    """The catalogue's spec of ``name``; ValueError unless it is a ``kind`` (counter, gauge,
    histogram) taking exactly these labels."""
    spec = SPECS.get(name)
    if spec is None or spec.kind != kind:
        raise ValueError(f"{name} is not a {kind} of the metric catalogue")
    names = tuple(labels)
    if set(names) != set(spec.labels):
        raise ValueError(f"{name} takes labels {spec.labels}, got {names}")
    return spec


@runtime_checkable
class Metrics(Protocol):
    """Where services report measurements; names must be in ``CATALOGUE``."""

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        """Add to a counter."""
        ...

    def set(self, name: str, value: float, **labels: str) -> None:
        """Set a gauge."""
        ...

    def observe(self, name: str, value: float, **labels: str) -> None:
        """Record one value of a histogram."""
        ...
