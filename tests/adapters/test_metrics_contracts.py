"""The Metrics contract on the Prometheus adapter and on the in-memory recorder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contracts.metrics_contract import MetricsContract, Probe, Read
from xnai.adapters.memory import RecordingMetrics
from xnai.adapters.metrics.prometheus import PrometheusMetrics


def _read_recording(metrics: RecordingMetrics) -> Read:
    """What the recorder holds, read the way a scrape reads it."""

    def read(name: str, **labels: str) -> float | None:
        key = tuple(sorted(labels.items()))
        for suffix, combine in (("_count", len), ("_sum", sum)):
            base = name.removesuffix(suffix)
            if base != name and base in metrics.observations:
                values = [v for k, v in metrics.observations[base] if k == key]
                return float(combine(values)) if values else None
        return metrics.value(name, **labels)

    return read


class TestPrometheusContract(MetricsContract):
    @pytest.fixture
    def probe(self, tmp_path: Path) -> Probe:
        metrics = PrometheusMetrics(tmp_path)
        return metrics, lambda name, **labels: metrics.registry.get_sample_value(name, labels)


class TestRecordingContract(MetricsContract):
    @pytest.fixture
    def probe(self) -> Probe:
        metrics = RecordingMetrics()
        return metrics, _read_recording(metrics)
