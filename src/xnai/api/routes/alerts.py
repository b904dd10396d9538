"""GET /v1/admin/alerts: the anomaly detector's alerts over query latency and error rate."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from xnai.api.deps import AnomaliesDep, MetricsDep
from xnai.api.openapi import SIGNED_IN
from xnai.api.security import require
from xnai.domain.rbac import Permission
from xnai.services.anomaly import ALERTING

router = APIRouter(tags=["admin"], responses=SIGNED_IN)


@router.get("/v1/admin/alerts", dependencies=[require(Permission.READ_METRICS)])
async def alerts(watch: AnomaliesDep, metrics: MetricsDep) -> dict[str, Any]:
    """Each watched series' state (ok or alerting, since when, last value and score), the
    series alerting now, recent transitions and the detector's settings."""
    series = watch.status()
    watch.publish(metrics)
    return {
        "alerting": [s.series for s in series if s.state == ALERTING],
        "series": [s.as_dict() for s in series],
        "history": watch.history(),
        "policy": watch.policy.as_dict(),
    }
