"""Behaviour every Metrics adapter must share; subclass and override `probe`."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from xnai.domain.metrics import Metrics

Read = Callable[..., float | None]
"""``read(sample_name, **labels)``: a counter's or gauge's value, or ``<histogram>_count`` /
``<histogram>_sum``; None when the series was never reported."""
Probe = tuple[Metrics, Read]


class MetricsContract:
    """Mixin of contract tests; a `Test...` subclass supplies `probe`: a fresh adapter and a
    function that reads back what it holds."""

    @pytest.fixture
    def probe(self) -> Probe:
        """The adapter under test and its reader (subclasses override this fixture)."""
        pytest.fail("MetricsContract subclasses must override the `probe` fixture")

    def test_satisfies_the_port(self, probe: Probe) -> None:
        assert isinstance(probe[0], Metrics)

    def test_counters_add_up_per_label_set(self, probe: Probe) -> None:
        metrics, read = probe
        metrics.inc("xoe_query_count_total", intent="ask", component="api")
        metrics.inc("xoe_query_count_total", 2.5, intent="ask", component="api")
        metrics.inc("xoe_query_count_total", intent="search", component="cli")
        assert read("xoe_query_count_total", intent="ask", component="api") == 3.5
        assert read("xoe_query_count_total", intent="search", component="cli") == 1.0

    def test_unlabelled_counters(self, probe: Probe) -> None:
        metrics, read = probe
        metrics.inc("xoe_ingest_chunks_total", 12)
        assert read("xoe_ingest_chunks_total") == 12.0

    def test_gauges_keep_the_last_value(self, probe: Probe) -> None:
        metrics, read = probe
        metrics.set("xoe_component_health_status", 1.0, component="redis")
        metrics.set("xoe_component_health_status", 0.0, component="redis")
        metrics.set("xoe_component_health_status", 1.0, component="llm")
        assert read("xoe_component_health_status", component="redis") == 0.0
        assert read("xoe_component_health_status", component="llm") == 1.0

    def test_histograms_count_and_sum_observations(self, probe: Probe) -> None:
        metrics, read = probe
        for value in (0.2, 0.3, 1.5):
            metrics.observe("xoe_query_latency_seconds", value, mode="hybrid", generate="true")
        assert read("xoe_query_latency_seconds_count", mode="hybrid", generate="true") == 3
        total = read("xoe_query_latency_seconds_sum", mode="hybrid", generate="true")
        assert total == pytest.approx(2.0)

    @pytest.mark.parametrize(
        ("method", "name", "labels"),
        [
            ("inc", "xoe_not_in_the_catalogue_total", {}),
            ("inc", "xoe_component_health_status", {"component": "api"}),  # a gauge
            ("set", "xoe_query_count_total", {"intent": "a", "component": "b"}),  # a counter
            ("observe", "xoe_query_latency_seconds", {"mode": "hybrid"}),  # a label short
            ("inc", "xoe_ingest_chunks_total", {"user": "alice"}),  # an undeclared label
        ],
    )
    def test_names_and_labels_outside_the_catalogue_are_refused(
        self, probe: Probe, method: str, name: str, labels: dict[str, str]
    ) -> None:
        with pytest.raises(ValueError):
            getattr(probe[0], method)(name, 1.0, **labels)

    def test_concurrent_increments_are_all_counted(self, probe: Probe) -> None:
        metrics, read = probe
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda _: metrics.inc("xoe_generation_rejected_total"), range(400)))
        assert read("xoe_generation_rejected_total") == 400.0
