"""Compliance self-audits: each check inspects the installation's real state.

The composition root gathers ``Facts`` from the live components (key ring, audit log, user
store, settings, environment); the checks here turn them into the seed's result shape. A
check never returns a constant: each reads one or more facts and says what it saw.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from xnai.domain.errors import NotFoundError
from xnai.domain.ports import AuditSink

FRAMEWORKS = ("gdpr", "soc2", "ccpa", "iso27001")


@dataclass(frozen=True, slots=True)
class Facts:
    """What the self-audit inspects, read from the running installation."""

    encryption_enabled: bool
    key_age_days: float | None
    key_max_age_days: int
    audit_ok: bool
    audit_message: str
    audit_lines: int
    retention_days: int
    retention_last_run: str | None  # ISO time of the last retention job, None if never
    retention_overdue: int  # documents older than the retention period still present
    admins_total: int
    admins_without_mfa: list[str]
    mfa_required: bool
    password_min_length: int
    common_password_entries: int
    default_password_users: list[str]
    session_timeout_s: int
    session_idle_timeout_s: int
    lockout_threshold: int
    lockout_duration_s: int
    bind_host: str
    behind_tls_proxy: bool
    backups_dir: str | None
    backups_dir_writable: bool
    telemetry_unset: list[str]  # telemetry variables not set to their off value
    export_available: bool
    erasure_available: bool


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check's verdict with the evidence it saw."""

    check_id: str
    name: str
    passed: bool
    evidence: dict[str, Any]
    recommendation: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "check_id": self.check_id,
            "name": self.name,
            "status": "passed" if self.passed else "failed",
            "evidence": self.evidence,
            "recommendation": "" if self.passed else self.recommendation,
        }


@dataclass(frozen=True, slots=True)
class Check:
    """A named rule over the facts, and the frameworks that require it."""

    check_id: str
    name: str
    frameworks: tuple[str, ...]
    run: Callable[[Facts], tuple[bool, dict[str, Any]]]
    recommendation: str


@dataclass(frozen=True, slots=True)
class ComplianceReport:
    """The seed's result shape for one framework."""

    framework: str
    started_at: str
    completed_at: str
    results: tuple[CheckResult, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> int:
        """Checks that passed."""
        return sum(r.passed for r in self.results)

    @property
    def score(self) -> float:
        """Share of checks passed, 0..100."""
        return round(100.0 * self.passed / len(self.results), 1) if self.results else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the seed's keys)."""
        return {
            "framework": self.framework,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
            "compliance_score": self.score,
            "total_checks": len(self.results),
            "passed_checks": self.passed,
            "failed_checks": len(self.results) - self.passed,
            "results": [r.as_dict() for r in self.results],
            "recommendations": [r.recommendation for r in self.results if not r.passed],
        }


def _encryption(f: Facts) -> tuple[bool, dict[str, Any]]:
    return f.encryption_enabled, {"encryption_enabled": f.encryption_enabled}


def _key_age(f: Facts) -> tuple[bool, dict[str, Any]]:
    age = None if f.key_age_days is None else round(f.key_age_days, 1)
    ok = age is not None and age <= f.key_max_age_days
    return ok, {"key_age_days": age, "max_age_days": f.key_max_age_days}


def _audit_chain(f: Facts) -> tuple[bool, dict[str, Any]]:
    return f.audit_ok, {"verified": f.audit_ok, "lines": f.audit_lines, "result": f.audit_message}


def _retention(f: Facts) -> tuple[bool, dict[str, Any]]:
    ok = f.retention_last_run is not None and f.retention_overdue == 0
    return ok, {
        "retention_days": f.retention_days,
        "last_run": f.retention_last_run,
        "documents_past_retention": f.retention_overdue,
    }


def _admin_mfa(f: Facts) -> tuple[bool, dict[str, Any]]:
    ok = f.admins_total > 0 and not f.admins_without_mfa
    return ok, {
        "admins": f.admins_total,
        "admins_without_mfa": sorted(f.admins_without_mfa),
        "mfa_required": f.mfa_required,
    }


def _passwords(f: Facts) -> tuple[bool, dict[str, Any]]:
    ok = (
        f.password_min_length >= 12
        and f.common_password_entries > 0
        and not f.default_password_users
    )
    return ok, {
        "min_length": f.password_min_length,
        "breached_list_entries": f.common_password_entries,
        "accounts_with_default_password": sorted(f.default_password_users),
    }


def _sessions(f: Facts) -> tuple[bool, dict[str, Any]]:
    ok = f.session_timeout_s <= 8 * 3600 and f.session_idle_timeout_s <= f.session_timeout_s
    return ok, {
        "session_timeout_s": f.session_timeout_s,
        "idle_timeout_s": f.session_idle_timeout_s,
        "limit_s": 8 * 3600,
    }


def _lockout(f: Facts) -> tuple[bool, dict[str, Any]]:
    ok = f.lockout_threshold <= 10 and f.lockout_duration_s >= 60
    return ok, {"threshold": f.lockout_threshold, "duration_s": f.lockout_duration_s}


LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def _transport(f: Facts) -> tuple[bool, dict[str, Any]]:
    loopback = f.bind_host in LOOPBACK or f.bind_host.startswith("127.")
    return loopback or f.behind_tls_proxy, {
        "bind_host": f.bind_host,
        "loopback": loopback,
        "behind_tls_proxy": f.behind_tls_proxy,
    }


def _backups(f: Facts) -> tuple[bool, dict[str, Any]]:
    ok = f.backups_dir is not None and f.backups_dir_writable
    return ok, {"backups_dir": f.backups_dir, "writable": f.backups_dir_writable}


def _telemetry(f: Facts) -> tuple[bool, dict[str, Any]]:
    return not f.telemetry_unset, {"not_switched_off": sorted(f.telemetry_unset)}


def _subject_rights(f: Facts) -> tuple[bool, dict[str, Any]]:
    ok = f.export_available and f.erasure_available
    return ok, {"export": f.export_available, "erasure": f.erasure_available}


ALL = FRAMEWORKS
CHECKS: tuple[Check, ...] = (
    Check(
        "encryption_at_rest",
        "Document data is encrypted at rest",
        ALL,
        _encryption,
        "Set enterprise.security.encryption_enabled = true and re-ingest the library.",
    ),
    Check(
        "key_age",
        "The master key is younger than the allowed age",
        ("soc2", "iso27001", "gdpr"),
        _key_age,
        "Run `xnai keys rotate`.",
    ),
    Check(
        "audit_chain",
        "The audit log's HMAC chain verifies",
        ALL,
        _audit_chain,
        "Investigate the audit log (`xnai audit verify`) and restore it from backup.",
    ),
    Check(
        "retention",
        "Data retention is enforced by a job",
        ("gdpr", "ccpa", "iso27001"),
        _retention,
        "Run `xnai compliance retention` (xnai serve runs it daily).",
    ),
    Check(
        "admin_mfa",
        "Every administrator uses multi-factor login",
        ("soc2", "iso27001"),
        _admin_mfa,
        "Have each admin enrol in TOTP, or set enterprise.security.mfa_required = true.",
    ),
    Check(
        "passwords",
        "Password policy is strong and no account has a default password",
        ("soc2", "iso27001"),
        _passwords,
        "Keep password_min_length >= 12 and reset the listed accounts' passwords.",
    ),
    Check(
        "session_timeout",
        "Sessions expire within 8 hours and after idling",
        ("soc2", "iso27001"),
        _sessions,
        "Set enterprise.security.session_timeout <= 28800 and an idle timeout below it.",
    ),
    Check(
        "lockout",
        "Repeated failed logins lock the account",
        ("soc2", "iso27001"),
        _lockout,
        "Set failed_login_lockout <= 10 and lockout_duration >= 60 seconds.",
    ),
    Check(
        "transport",
        "The server is bound to loopback or behind TLS",
        ALL,
        _transport,
        "Bind to 127.0.0.1, or put a TLS proxy in front and set server.behind_tls_proxy.",
    ),
    Check(
        "backups",
        "Backups are configured",
        ("soc2", "iso27001"),
        _backups,
        "Set enterprise.compliance.backups_dir to a writable directory.",
    ),
    Check(
        "telemetry_off",
        "Third-party telemetry is switched off",
        ("gdpr", "ccpa", "iso27001"),
        _telemetry,
        "Start the service through `xnai`, which switches telemetry off.",
    ),
    Check(
        "subject_rights",
        "Data subject export and erasure are available",
        ("gdpr", "ccpa", "iso27001"),
        _subject_rights,
        "Enable the privacy service (export and erasure).",
    ),
)


def checks_for(framework: str) -> list[Check]:
    """The checks a framework requires; NotFoundError for an unknown framework."""
    if framework not in FRAMEWORKS:
        raise NotFoundError(
            f"unknown compliance framework {framework!r}; choose one of {', '.join(FRAMEWORKS)}"
        )
    return [c for c in CHECKS if framework in c.frameworks]


def run_checks(
    framework: str,
    facts: Facts,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    checks: Sequence[Check] | None = None,
) -> ComplianceReport:
    """Evaluate a framework's checks against ``facts``."""
    selected = checks_for(framework) if checks is None else list(checks)
    started = clock().isoformat(timespec="seconds")
    results = []
    for check in selected:
        passed, evidence = check.run(facts)
        results.append(
            CheckResult(check.check_id, check.name, passed, evidence, check.recommendation)
        )
    return ComplianceReport(
        framework, started, clock().isoformat(timespec="seconds"), tuple(results)
    )


class ComplianceService:
    """Runs self-audits on demand and on a schedule; each run is an audit event."""

    def __init__(
        self,
        facts: Callable[[], Facts],
        audit: AuditSink,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._facts = facts
        self._audit = audit
        self._clock = clock

    def run(self, framework: str, *, user_id: str = "system") -> ComplianceReport:
        """Inspect the installation for ``framework`` and record the run."""
        checks = checks_for(framework)  # unknown framework: NotFoundError before any work
        report = run_checks(framework, self._facts(), clock=self._clock, checks=checks)
        self._audit.record(
            "compliance_audit",
            action="run",
            resource=f"compliance/{framework}",
            user_id=user_id,
            success=report.passed == len(report.results),
            severity="info" if report.passed == len(report.results) else "warning",
            details={
                "framework": framework,
                "compliance_score": report.score,
                "failed": [r.check_id for r in report.results if not r.passed],
            },
        )
        return report
