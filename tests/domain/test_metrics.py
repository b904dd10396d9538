"""The metric catalogue: what a report must name to be accepted."""

from __future__ import annotations

import pytest

from xnai.domain.metrics import SPECS, catalogued


def test_a_catalogued_metric_with_its_labels_is_its_spec() -> None:
    spec = catalogued("xoe_cache_requests_total", "counter", {"result": "hit"})
    assert spec is SPECS["xoe_cache_requests_total"]


@pytest.mark.parametrize(
    ("name", "kind", "labels", "message"),
    [
        ("xoe_unknown_total", "counter", (), "is not a counter of the metric catalogue"),
        ("xoe_cache_requests_total", "gauge", ("result",), "is not a gauge"),
        ("xoe_cache_requests_total", "counter", (), r"takes labels \('result',\), got \(\)"),
        ("xoe_cache_requests_total", "counter", ("result", "x"), "takes labels"),
    ],
)
def test_anything_else_is_refused(
    name: str, kind: str, labels: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        catalogued(name, kind, labels)
