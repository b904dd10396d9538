"""The audit trail: security-relevant events in the seed's shape, with compliance flags.

``Auditor`` builds each event (timestamp, event_id, event_type, severity, source_ip,
user_id, resource, action, success, details, compliance_flags) and appends it to an
``AuditLog``, which seals it into the HMAC chain.
"""

from __future__ import annotations

import hashlib
import logging
import math
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any, Unpack

from xnai.domain.audit import (
    PERSONAL_DETAIL_KEYS,
    USER_RESOURCE_PREFIXES,
    AuditLog,
    VerifyResult,
)
from xnai.domain.errors import AuditStorageFullError, AuditUnavailableError, StorageFullError
from xnai.domain.ports import EVENT_DEFAULTS, AuditSink, EventFields
from xnai.domain.rbac import Permission
from xnai.services.disk import ADVICE, is_disk_full

__all__ = [
    "EVENT_FLAGS",
    "GDPR",
    "PRIVILEGED_ACCESS",
    "SOC2",
    "Auditor",
    "VerifyResult",
    "audited",
    "compliance_flags",
    "log_follow_up",
    "record_first",
    "safe_details",
]

log = logging.getLogger("xnai.audit")

GDPR = "GDPR"
SOC2 = "SOC2"
PRIVILEGED_ACCESS = "PRIVILEGED_ACCESS"
_ORDER = (GDPR, SOC2, PRIVILEGED_ACCESS)

_AUTH = frozenset({GDPR, SOC2})
_ADMIN = frozenset({GDPR, SOC2, PRIVILEGED_ACCESS})
_SYSTEM = frozenset({SOC2, PRIVILEGED_ACCESS})

# The rule table: which flags each event type carries. Documented in docs/explanation/audit.md.
EVENT_FLAGS: dict[str, frozenset[str]] = {
    # authentication and credentials: personal data and security-relevant
    "login_success": _AUTH,
    "login_failure": _AUTH,
    "account_locked": _AUTH,
    "logout": _AUTH,
    "password_changed": _AUTH,
    "mfa_enrolled": _AUTH,
    "mfa_enabled": _AUTH,
    "mfa_disabled": _AUTH,
    "session_revoked": _AUTH,
    "api_key_created": _AUTH,
    "api_key_revoked": _AUTH,
    # user and role management: privileged
    "user_created": _ADMIN,
    "user_updated": _ADMIN,
    "user_deleted": _ADMIN,
    "user_disabled": _ADMIN,
    "user_enabled": _ADMIN,
    "role_changed": _ADMIN,
    "password_reset": _ADMIN,
    "mfa_reset": _ADMIN,
    "account_unlocked": _ADMIN,
    # the library: documents may hold personal data
    "query": frozenset({GDPR}),
    "ingest": frozenset({GDPR}),
    "delete": _ADMIN,
    "data_export": frozenset({GDPR, SOC2}),
    "data_erasure": _ADMIN,
    "retention": _ADMIN,
    # access control, keys, configuration, audits
    "permission_denied": frozenset({SOC2}),
    "access_control": _SYSTEM,
    "key_rotation": _SYSTEM,
    "config_change": _SYSTEM,
    "compliance_audit": _SYSTEM,
}
UNKNOWN_EVENT_FLAGS = frozenset({SOC2})

# Using one of these permissions successfully is privileged access.
PRIVILEGED_PERMISSIONS = frozenset(
    {
        Permission.ADMIN_SYSTEM.value,
        Permission.MANAGE_USERS.value,
        Permission.CONFIGURE_COMPONENTS.value,
        Permission.DELETE_DOCUMENTS.value,
    }
)

# Free text that may quote documents is stored as its SHA-256 and length, never as text:
# the log is not encrypted. Secrets are never stored at all.
TEXT_KEYS = frozenset({"query", "question", "prompt"})
SECRET_KEYS = frozenset(
    {"password", "new_password", "old_password", "secret", "token", "api_key", "totp", "otp"}
)
REDACTED = "[redacted]"


def compliance_flags(
    event_type: str, *, user_id: str | None, success: bool, details: Mapping[str, Any]
) -> list[str]:
    """The compliance flags of an event, by the rule table and three rules on details.

    Acting on another person's account (``target_user`` or ``target_user_id`` differs from
    the actor) is privileged access to personal data; a successful use of an admin, user
    management, configuration or deletion permission (``details["permission"]``) is
    privileged access; every privileged event is also security-relevant (SOC2).
    """
    flags = set(EVENT_FLAGS.get(event_type, UNKNOWN_EVENT_FLAGS))
    target = details.get("target_user_id", details.get("target_user"))
    if target is not None and str(target) != str(user_id):
        flags |= {GDPR, PRIVILEGED_ACCESS}
    if success and details.get("permission") in PRIVILEGED_PERMISSIONS:
        flags.add(PRIVILEGED_ACCESS)
    if PRIVILEGED_ACCESS in flags:
        flags.add(SOC2)
    return [f for f in _ORDER if f in flags]


def _jsonable(value: Any) -> Any:
    """``value`` reduced to JSON types (anything else becomes its ``str``)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def safe_details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """Details fit for an unencrypted log: text hashed, secrets dropped, personal values str."""
    out: dict[str, Any] = {}
    for key, value in _jsonable(dict(details or {})).items():
        if key in SECRET_KEYS:
            out[key] = REDACTED
        elif key in TEXT_KEYS and isinstance(value, str):
            out[f"{key}_sha256"] = hashlib.sha256(value.encode("utf-8")).hexdigest()
            out[f"{key}_length"] = len(value)
        elif key in PERSONAL_DETAIL_KEYS and isinstance(value, list):
            out[key] = [None if v is None else str(v) for v in value]
        elif key in PERSONAL_DETAIL_KEYS and value is not None:
            out[key] = str(value)
        else:
            out[key] = value
    return out


class Auditor:
    """Builds events in the seed's shape and appends them to the tamper-evident log."""

    def __init__(
        self,
        log: AuditLog,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self.log = log
        self._clock = clock
        self._new_id = new_id

    def event(self, event_type: str, **fields: Unpack[EventFields]) -> dict[str, Any]:
        """The event as it will be sealed (without the chain fields); a field left out
        takes its value in ``EVENT_DEFAULTS``."""
        given = {**EVENT_DEFAULTS, **fields}
        clean = safe_details(given["details"])
        user_id, success = given["user_id"], bool(given["success"])
        return {
            "timestamp": self._clock().astimezone(UTC).isoformat(timespec="microseconds"),
            "event_id": self._new_id(),
            "event_type": str(event_type),
            "severity": str(given["severity"]),
            "source_ip": _text(given["source_ip"]),
            "user_id": _text(user_id),
            "resource": str(given["resource"]),
            "action": str(given["action"]),
            "success": success,
            "details": clean,
            "compliance_flags": compliance_flags(
                str(event_type), user_id=user_id, success=success, details=clean
            ),
        }

    def record(self, event_type: str, **fields: Unpack[EventFields]) -> None:
        """Append one event; AuditUnavailableError when the log cannot be written."""
        event = self.event(event_type, **fields)
        try:
            self.log.append(event)
        except (OSError, StorageFullError) as exc:
            kind = AuditStorageFullError if is_disk_full(exc) else AuditUnavailableError
            raise kind(f"the audit trail cannot be written ({_reason(exc)})") from exc

    def verify(self) -> VerifyResult:
        """Check the chain, every MAC and the anchor."""
        return self.log.verify()

    def tail(self, n: int = 20) -> list[dict[str, Any]]:
        """The last ``n`` lines as stored."""
        return self.log.tail(n)

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every stored line, oldest first (reads the whole log; for tests and exports)."""
        return list(self.log.lines())

    def events_about(self, user_id: str, *, also: Collection[str] = ()) -> list[dict[str, Any]]:
        """Every line naming the person (as actor, or by id or name in details)."""
        values = {user_id, *also}
        return [line for line in self.log.lines() if _names(line, values)]

    def pseudonymise(self, user_id: str, *, also: Collection[str] = ()) -> int:
        """Replace the person's identifying values by pseudonyms; return lines changed."""
        return self.log.pseudonymise(user_id, also=also)

    def trim(self, older_than: datetime) -> int:
        """Drop the leading lines older than ``older_than``; the rest still verifies."""
        return self.log.trim(older_than)

    def trim_days(self, days: int) -> int:
        """Drop the leading lines older than ``days`` days (the retention period)."""
        return self.trim(self._clock() - timedelta(days=days))


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _reason(exc: BaseException) -> str:
    """What went wrong with the log, without file names (they are for the server's log)."""
    cause = exc.__cause__ if isinstance(exc, AuditUnavailableError) else exc
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    return str(cause) or type(cause).__name__


def record_first(sink: AuditSink, event_type: str, **fields: Unpack[EventFields]) -> None:
    """Write the event of a change before the change is made; AuditUnavailableError, and
    the change must not be made, when the trail cannot be written."""
    try:
        sink.record(event_type, **fields)
    except (AuditUnavailableError, OSError, StorageFullError) as exc:
        if is_disk_full(exc):
            raise AuditStorageFullError(
                "the disk is full: the audit trail cannot be written, so the action was "
                f"refused and nothing was changed; {ADVICE}"
            ) from exc
        raise AuditUnavailableError(
            f"the audit trail cannot be written ({_reason(exc)}): the action was refused and "
            "nothing was changed; free disk space or make the audit directory writable, then "
            "try again"
        ) from exc


def record_failure(
    sink: AuditSink, event_type: str, exc: BaseException, **fields: Unpack[EventFields]
) -> None:
    """Record that a change whose event was already written did not happen (best effort:
    the failure itself is what the caller reports)."""
    details = dict(fields.get("details") or {})
    details["error"] = f"{type(exc).__name__}: {exc}"
    failed: EventFields = {**fields, "success": False, "severity": "warning", "details": details}
    try:
        sink.record(event_type, **failed)
    except Exception as again:
        log.error("%s failed and its failure could not be audited: %r", event_type, again)


def log_follow_up(sink: AuditSink, event_type: str, **fields: Unpack[EventFields]) -> None:
    """Record a detail of a change that is already made and audited (how many credentials
    it revoked); a trail that fails now cannot undo the change, so it is logged instead."""
    try:
        sink.record(event_type, **fields)
    except (AuditUnavailableError, OSError, StorageFullError) as exc:
        log.error("%s could not be audited after the change: %r", event_type, exc)


@contextmanager
def audited(
    sink: AuditSink | None, event_type: str, **fields: Unpack[EventFields]
) -> Iterator[None]:
    """Write the event, then make the change in the ``with`` block (write-ahead).

    The change is refused, with AuditUnavailableError and nothing changed, when the event
    cannot be written; a change that fails after its event was written is recorded as a
    failed event of the same type. A change is therefore never made without its event.
    """
    if sink is None:
        yield
        return
    record_first(sink, event_type, **fields)
    try:
        yield
    except Exception as exc:
        record_failure(sink, event_type, exc, **fields)
        raise


def _names(line: Mapping[str, Any], values: Collection[str]) -> bool:
    actor, resource = line.get("user_id"), line.get("resource")
    if isinstance(actor, str) and actor in values:
        return True
    if isinstance(resource, str) and any(
        resource == prefix + value for prefix in USER_RESOURCE_PREFIXES for value in values
    ):
        return True
    details = line.get("details")
    if not isinstance(details, Mapping):
        return False
    for key in PERSONAL_DETAIL_KEYS:
        value = details.get(key)
        items = value if isinstance(value, list) else [value]
        if any(isinstance(v, str) and v in values for v in items):
            return True
    return False
