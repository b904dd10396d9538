"""The retention job: data older than the retention period goes, and the job says so."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from xnai.domain.models import Document
from xnai.domain.ports import AuditSink
from xnai.services.knowledge import KnowledgeBase


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """What one run removed."""

    ran_at: str
    cutoff: str
    documents_removed: tuple[str, ...]
    sessions_purged: int
    audit_lines_trimmed: int
    answer_bundles_purged: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "ran_at": self.ran_at,
            "cutoff": self.cutoff,
            "documents_removed": list(self.documents_removed),
            "sessions_purged": self.sessions_purged,
            "audit_lines_trimmed": self.audit_lines_trimmed,
            "answer_bundles_purged": self.answer_bundles_purged,
        }


def expired(documents: list[Document], cutoff: datetime) -> list[Document]:
    """Documents ingested before ``cutoff``."""
    return [d for d in documents if _parse(d.ingested_at) < cutoff]


def _parse(stamp: str) -> datetime:
    when = datetime.fromisoformat(stamp)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class RetentionJob:
    """Removes documents, expired credentials, audit lines and answer bundles older than
    ``days``."""

    def __init__(
        self,
        kb: KnowledgeBase,
        days: int,
        audit: AuditSink,
        *,
        purge_credentials: Callable[[datetime], int] = lambda _now: 0,
        trim_audit: Callable[[datetime], int] = lambda _cutoff: 0,
        purge_answers: Callable[[datetime], int] = lambda _cutoff: 0,
        remember: Callable[[str], None] = lambda _stamp: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.kb = kb
        self.days = days
        self._audit = audit
        self._purge_credentials = purge_credentials
        self._trim_audit = trim_audit
        self._purge_answers = purge_answers
        self._remember = remember
        self._clock = clock

    def overdue(self) -> int:
        """Documents past the retention period that are still present."""
        return len(expired(self.kb.repo.documents(), self._clock() - timedelta(days=self.days)))

    def run(self, *, user_id: str = "system") -> RetentionReport:
        """Enforce the retention period now."""
        now = self._clock()
        cutoff = now - timedelta(days=self.days)
        doomed = expired(self.kb.repo.documents(), cutoff)
        removed = self.kb.remove_many(d.doc_id for d in doomed) if doomed else []
        purged = self._purge_credentials(now)
        trimmed = self._trim_audit(cutoff)
        bundles = self._purge_answers(cutoff)
        report = RetentionReport(
            ran_at=now.isoformat(timespec="seconds"),
            cutoff=cutoff.isoformat(timespec="seconds"),
            documents_removed=tuple(d.doc_id for d in removed),
            sessions_purged=purged,
            audit_lines_trimmed=trimmed,
            answer_bundles_purged=bundles,
        )
        self._audit.record(
            "retention",
            action="enforce",
            resource="retention",
            user_id=user_id,
            details={
                "retention_days": self.days,
                "documents_removed": len(removed),
                "doc_ids": list(report.documents_removed),
                "sessions_purged": purged,
                "audit_lines_trimmed": trimmed,
                "answer_bundles_purged": bundles,
            },
        )
        self._remember(report.ran_at)
        return report
