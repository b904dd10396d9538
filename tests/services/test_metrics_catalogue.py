"""The metric catalogue is consistent and the in-memory recorder enforces it."""

from __future__ import annotations

import re

import pytest

from xnai.adapters.memory.metrics import RecordingMetrics
from xnai.domain.metrics import CATALOGUE, SPECS

FORBIDDEN_LABELS = {"user", "user_id", "username", "query", "path", "source", "ip"}


def test_names_kinds_and_labels_are_sound() -> None:
    assert len(SPECS) == len(CATALOGUE)
    for spec in CATALOGUE:
        assert re.fullmatch(r"xoe_[a-z0-9_]+", spec.name), spec.name
        assert spec.kind in {"counter", "gauge", "histogram"}
        assert spec.name.endswith("_total") == (spec.kind == "counter"), spec.name
        assert not FORBIDDEN_LABELS & set(spec.labels), spec.name


def test_recorder_keeps_values_and_refuses_unknown_names_and_labels() -> None:
    m = RecordingMetrics()
    m.inc("xoe_query_count_total", intent="query", component="retrieval")
    m.inc("xoe_query_count_total", 2, intent="query", component="retrieval")
    m.set("xoe_circuit_breaker_state", 1, backend="llm")
    m.observe("xoe_query_latency_seconds", 0.2, mode="hybrid", generate="false")
    assert m.value("xoe_query_count_total", intent="query", component="retrieval") == 3
    assert m.value("xoe_circuit_breaker_state", backend="llm") == 1
    with pytest.raises(ValueError, match="catalogue"):
        m.inc("xoe_not_a_metric_total")
    with pytest.raises(ValueError, match="labels"):
        m.inc("xoe_query_count_total", user_id="u_1")
    with pytest.raises(ValueError, match="catalogue"):
        m.set("xoe_query_count_total", 1, intent="q", component="c")
