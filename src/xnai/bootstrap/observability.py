"""Metrics, the shared cache and the anomaly detector."""

from __future__ import annotations

from collections.abc import Callable

from xnai.adapters.memory.metrics import RecordingMetrics
from xnai.config import Settings
from xnai.domain.cache import Cache
from xnai.domain.metrics import Metrics
from xnai.services.anomaly import AnomalyPolicy, AnomalyWatch


def build_metrics(settings: Settings) -> Metrics:
    """Prometheus metrics in a registry of their own when monitoring is on, else in memory."""
    if not settings.enterprise.monitoring.enabled:
        return RecordingMetrics()
    from xnai.adapters.metrics.prometheus import PrometheusMetrics

    return PrometheusMetrics(settings.data_dir)


def build_cache(
    settings: Settings, on_change: Callable[[bool], None] | None = None
) -> Cache | None:
    """The shared cache on Redis; None when ``redis.url`` is empty."""
    r = settings.redis
    if not r.url:
        return None
    from xnai.adapters.cache.redis_cache import RedisCache

    return RedisCache(
        r.url,
        password=r.password.get_secret_value() or None,
        namespace=r.namespace,
        timeout=r.socket_timeout,
        retry_interval=r.retry_interval,
        on_change=on_change,
    )


def anomaly_policy(settings: Settings) -> AnomalyPolicy:
    """The anomaly detector's policy from ``enterprise.monitoring.anomaly_*``."""
    m = settings.enterprise.monitoring
    return AnomalyPolicy(
        bucket_s=m.anomaly_bucket_s,
        window=m.anomaly_window,
        min_samples=min(12, m.anomaly_window),
        threshold=m.anomaly_threshold,
        persistence=m.anomaly_persistence,
    )


def build_anomalies(settings: Settings) -> AnomalyWatch:
    """Anomaly detection over query latency and error rate."""
    return AnomalyWatch(anomaly_policy(settings))
