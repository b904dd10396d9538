"""Data subject rights: export everything about a user, erase a user's data everywhere."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from xnai.domain.errors import NotFoundError
from xnai.domain.models import Document
from xnai.domain.ports import AuditSink
from xnai.services.knowledge import KnowledgeBase


@dataclass(frozen=True, slots=True)
class Subject:
    """The person a request is about: their account id and login name."""

    user_id: str
    username: str


@dataclass(slots=True)
class SubjectData:
    """Where a subject's data lives, as callables the composition root provides."""

    find: Callable[[str], Subject | None]  # by user id or username
    account: Callable[[Subject], dict[str, Any]]  # account, sessions, keys (no secrets)
    audit_events: Callable[[Subject], list[dict[str, Any]]]
    forget_account: Callable[[Subject], None]  # delete the account and its credentials
    pseudonymise_audit: Callable[[Subject], int]  # lines changed
    forget_original: Callable[[Document], int]  # stored original files removed
    forget_cached: Callable[[], None] = lambda: None  # answers that may quote erased text
    forget_answers: Callable[[Subject], int] = lambda _subject: 0  # signed bundles removed
    extra: dict[str, Callable[[Subject], Any]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ErasureReport:
    """What one erasure removed."""

    user_id: str
    documents_removed: tuple[str, ...]
    originals_removed: int
    audit_lines_pseudonymised: int
    account_removed: bool
    answer_bundles_removed: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "user_id": self.user_id,
            "documents_removed": list(self.documents_removed),
            "originals_removed": self.originals_removed,
            "audit_lines_pseudonymised": self.audit_lines_pseudonymised,
            "account_removed": self.account_removed,
            "answer_bundles_removed": self.answer_bundles_removed,
        }


def owned_by(documents: list[Document], subject: Subject) -> list[Document]:
    """Documents the subject ingested (recorded by user id or by login name)."""
    return [d for d in documents if d.ingested_by in (subject.user_id, subject.username)]


class PrivacyService:
    """Export (GDPR art. 15/20, CCPA access) and erasure (GDPR art. 17, CCPA deletion)."""

    def __init__(
        self,
        kb: KnowledgeBase,
        data: SubjectData,
        audit: AuditSink,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.kb = kb
        self.data = data
        self._audit = audit
        self._clock = clock

    def subject(self, ref: str) -> Subject:
        """The subject named by user id or username; NotFoundError when unknown."""
        found = self.data.find(ref)
        if found is None:
            raise NotFoundError(f"no user {ref!r}")
        return found

    def export(self, ref: str, *, actor: str = "system") -> dict[str, Any]:
        """Everything stored about a user, as one JSON-ready object."""
        subject = self.subject(ref)
        docs = owned_by(self.kb.repo.documents(), subject)
        exported = {
            "exported_at": self._clock().isoformat(timespec="seconds"),
            "subject": asdict(subject),
            "account": self.data.account(subject),
            "documents": [d.summary() for d in docs],
            "audit_events": self.data.audit_events(subject),
            **{name: get(subject) for name, get in self.data.extra.items()},
        }
        self._audit.record(
            "data_export",
            action="export",
            resource=f"user/{subject.user_id}",
            user_id=actor,
            details={"target_user": subject.user_id, "documents": len(docs)},
        )
        return exported

    def erase(self, ref: str, *, actor: str = "system") -> ErasureReport:
        """Remove the user's documents from every index, their originals, cached answers,
        the bundles of their answers and their account, and pseudonymise them in the audit
        log (the chain stays verifiable)."""
        subject = self.subject(ref)
        docs = owned_by(self.kb.repo.documents(), subject)
        removed = self.kb.remove_many(d.doc_id for d in docs) if docs else []
        originals = sum(self.data.forget_original(d) for d in removed)
        self.data.forget_cached()
        bundles = self.data.forget_answers(subject)
        self.data.forget_account(subject)
        # The erasure event names the subject by user id only; pseudonymising afterwards
        # covers this event too.
        self._audit.record(
            "data_erasure",
            action="erase",
            resource=f"user/{subject.user_id}",
            user_id=actor,
            severity="warning",
            details={
                "target_user": subject.user_id,
                "documents_removed": len(removed),
                "answer_bundles_removed": bundles,
            },
        )
        lines = self.data.pseudonymise_audit(subject)
        return ErasureReport(
            user_id=subject.user_id,
            documents_removed=tuple(d.doc_id for d in removed),
            originals_removed=originals,
            audit_lines_pseudonymised=lines,
            account_removed=True,
            answer_bundles_removed=bundles,
        )
