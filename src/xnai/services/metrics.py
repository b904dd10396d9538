"""Measurements that several services report."""

from __future__ import annotations

from xnai.domain.metrics import Metrics


def report_health(metrics: Metrics, component: str, healthy: bool) -> None:
    """``xoe_component_health_status{component}`` after a component changed state."""
    metrics.set("xoe_component_health_status", 1.0 if healthy else 0.0, component=component)
