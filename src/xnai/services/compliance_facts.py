"""The facts a compliance self-audit inspects, gathered from the live services."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from xnai.domain.ports import AuditSink, KeyRing, StateStore
from xnai.services.audit import Auditor
from xnai.services.compliance import Facts
from xnai.services.keys import KeyRotation
from xnai.services.retention import RetentionJob
from xnai.services.users import UserAdmin


@dataclass(frozen=True, slots=True)
class CompliancePolicy:
    """The configured values the checks compare against (read afresh for every run)."""

    key_max_age_days: int
    retention_days: int
    mfa_required: bool
    bind_host: str
    behind_tls_proxy: bool
    backups_dir: Path | None
    telemetry_off: Mapping[str, str]  # variable -> the value that turns telemetry off


class ComplianceFacts:
    """Reads the state every compliance check inspects; call it for one set of facts."""

    def __init__(
        self,
        policy: Callable[[], CompliancePolicy],
        *,
        keyring: KeyRing,
        key_rotation: KeyRotation | None,
        audit: AuditSink,
        users: UserAdmin,
        retention: RetentionJob,
        state: StateStore,
    ) -> None:
        self._policy = policy
        self.keyring = keyring
        self.key_rotation = key_rotation
        self.audit = audit
        self.users = users
        self.retention = retention
        self.state = state

    def __call__(self) -> Facts:
        """The facts of the installation now."""
        p = self._policy()
        audit_ok, audit_message, audit_lines = self._audit_state()
        admins, without_mfa = self.users.admins_without_mfa()
        policy = self.users.policy
        return Facts(
            encryption_enabled=bool(getattr(self.keyring, "enabled", False)),
            key_age_days=self._key_age(),
            key_max_age_days=p.key_max_age_days,
            audit_ok=audit_ok,
            audit_message=audit_message,
            audit_lines=audit_lines,
            retention_days=p.retention_days,
            retention_last_run=self.state.get("last_run:retention"),
            retention_overdue=self.retention.overdue(),
            admins_total=admins,
            admins_without_mfa=without_mfa,
            mfa_required=p.mfa_required,
            password_min_length=policy.password_min_length,
            common_password_entries=len(getattr(self.users.is_common, "entries", ())),
            default_password_users=self.users.default_password_users(),
            session_timeout_s=policy.session_timeout,
            session_idle_timeout_s=policy.session_idle_timeout,
            lockout_threshold=policy.failed_login_lockout,
            lockout_duration_s=policy.lockout_duration,
            bind_host=p.bind_host,
            behind_tls_proxy=p.behind_tls_proxy,
            backups_dir=str(p.backups_dir) if p.backups_dir is not None else None,
            backups_dir_writable=_writable_dir(p.backups_dir),
            telemetry_unset=[k for k, v in p.telemetry_off.items() if os.environ.get(k) != v],
            export_available=True,
            erasure_available=isinstance(self.audit, Auditor),
        )

    def _key_age(self) -> float | None:
        if self.key_rotation is None:
            return None
        return self.key_rotation.status().age_days()

    def _audit_state(self) -> tuple[bool, str, int]:
        if isinstance(self.audit, Auditor):
            verified = self.audit.verify()
            return verified.ok, verified.describe(), verified.lines
        return False, "no audit log is configured", 0


def _writable_dir(path: Path | None) -> bool:
    return path is not None and path.is_dir() and os.access(path, os.W_OK)
