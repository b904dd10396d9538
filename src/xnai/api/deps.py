"""Dependencies of routes: each gives one service of the application's container.

A route takes only the services it uses (``auth: AuthDep``, ``access: AccessDep``, ...),
never the whole container, so what a route can reach is plain from its signature; the
readiness probe takes its own small record, ``Probe``. Each dependency reads a plain
attribute on the event loop: no worker thread is needed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request

from xnai.api.readiness import Probe
from xnai.bootstrap import Container
from xnai.domain.metrics import Metrics
from xnai.domain.ports import AuditSink
from xnai.services.access import AccessService
from xnai.services.anomaly import AnomalyWatch
from xnai.services.answer_bundles import AnswerBundles
from xnai.services.ask import AskService
from xnai.services.auth import AuthService
from xnai.services.compliance import ComplianceService
from xnai.services.ingestion import IngestionService
from xnai.services.knowledge import KnowledgeBase
from xnai.services.privacy import PrivacyService
from xnai.services.retention import RetentionJob

T = TypeVar("T")


def _service(pick: Callable[[Container], T]) -> Any:
    """A route dependency giving what ``pick`` takes from the app's container."""

    async def service(request: Request) -> T:
        return pick(request.app.state.container)

    return Depends(service)


async def _probe(request: Request) -> Probe:
    return request.app.state.probe


AskDep = Annotated[AskService, _service(lambda c: c.ask)]
"""Answers questions."""
AnswerBundlesDep = Annotated[AnswerBundles, _service(lambda c: c.answer_bundles)]
"""The signed bundles of answers."""
AuthDep = Annotated[AuthService, _service(lambda c: c.auth)]
"""Users, sessions, API keys and MFA."""
AccessDep = Annotated[AccessService, _service(lambda c: c.access)]
"""Collections and who may read or write them."""
KnowledgeDep = Annotated[KnowledgeBase, _service(lambda c: c.kb)]
"""The committed documents and indexes."""
IngestionDep = Annotated[IngestionService, _service(lambda c: c.ingestion)]
"""Adds and removes documents."""
AuditDep = Annotated[AuditSink, _service(lambda c: c.audit)]
"""The audit trail."""
MetricsDep = Annotated[Metrics, _service(lambda c: c.metrics)]
"""Counters, gauges and histograms."""
AnomaliesDep = Annotated[AnomalyWatch, _service(lambda c: c.anomalies)]
"""The anomaly detector over query latency and error rate."""
ComplianceDep = Annotated[ComplianceService, _service(lambda c: c.compliance)]
"""Compliance self-audits."""
RetentionDep = Annotated[RetentionJob, _service(lambda c: c.retention)]
"""Enforces the retention period."""
PrivacyDep = Annotated[PrivacyService, _service(lambda c: c.privacy)]
"""Data subject rights: export and erasure."""
ProbeDep = Annotated[Probe, Depends(_probe)]
"""What the readiness probe reads (built once with the app)."""
