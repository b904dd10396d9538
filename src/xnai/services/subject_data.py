"""Where a data subject's personal data lives, for export and erasure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xnai.domain.errors import NotFoundError
from xnai.domain.models import Document
from xnai.domain.ports import AuditSink, OriginalsStore
from xnai.domain.rbac import LOCAL_ADMIN
from xnai.services.access import AccessService
from xnai.services.answer_bundles import AnswerBundles
from xnai.services.audit import Auditor
from xnai.services.privacy import Subject, SubjectData
from xnai.services.users import UserAdmin


def subject_data(
    users: UserAdmin,
    audit: AuditSink,
    originals: OriginalsStore,
    access: AccessService,
    forget_cached: Callable[[], object],
    bundles: AnswerBundles | None = None,
) -> SubjectData:
    """The accounts, audit trail, stored originals, cached answers, answer bundles and
    collection grants that may hold a subject's personal data."""

    def find(ref: str) -> Subject | None:
        try:
            record = users.account_record(ref)
        except NotFoundError:
            return None
        return Subject(record["user_id"], record["username"])

    def forget_account(subject: Subject) -> None:
        users.erase_account(LOCAL_ADMIN, subject.user_id)
        # Grants go with the account, so a new account of the same name starts with none.
        access.forget_user(subject.user_id, also=[subject.username], actor=LOCAL_ADMIN.user_id)

    def audit_events(subject: Subject) -> list[dict[str, Any]]:
        if isinstance(audit, Auditor):
            return audit.events_about(subject.user_id, also=[subject.username])
        return []

    def pseudonymise(subject: Subject) -> int:
        if isinstance(audit, Auditor):
            return audit.pseudonymise(subject.user_id, also=[subject.username])
        return 0

    def forget_original(doc: Document) -> int:
        return originals.forget(doc.sha256)

    def forget_cached_answers() -> None:
        forget_cached()

    def readable_collections(subject: Subject) -> list[str]:
        return [
            col.name
            for col in access.store.list()
            if subject.user_id in col.readable_users or subject.username in col.readable_users
        ]

    def ids(subject: Subject) -> list[str]:
        # Sessions and API keys ask as the user id; ``xnai ask --as-user`` names a user by
        # id when the account exists, else as given.
        return list(dict.fromkeys((subject.user_id, subject.username)))

    def answer_bundles(subject: Subject) -> list[dict[str, Any]]:
        if bundles is None:
            return []
        return [b for user_id in ids(subject) for b in bundles.of_user(user_id)]

    def forget_answers(subject: Subject) -> int:
        if bundles is None:
            return 0
        return sum(bundles.forget_user(user_id) for user_id in ids(subject))

    return SubjectData(
        find=find,
        account=lambda subject: users.account_record(subject.user_id),
        audit_events=audit_events,
        forget_account=forget_account,
        pseudonymise_audit=pseudonymise,
        forget_original=forget_original,
        forget_cached=forget_cached_answers,
        forget_answers=forget_answers,
        extra={"collections": readable_collections, "answer_bundles": answer_bundles},
    )
