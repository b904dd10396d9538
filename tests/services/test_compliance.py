"""Compliance checks read the facts they are given; each failure names its evidence."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from xnai.adapters.memory.audit import RecordingAudit
from xnai.domain.errors import NotFoundError
from xnai.services.compliance import (
    CHECKS,
    FRAMEWORKS,
    ComplianceService,
    Facts,
    checks_for,
    run_checks,
)

GOOD = Facts(
    encryption_enabled=True,
    key_age_days=10.0,
    key_max_age_days=365,
    audit_ok=True,
    audit_message="OK: 12 lines",
    audit_lines=12,
    retention_days=2555,
    retention_last_run="2026-11-01T00:00:00+00:00",
    retention_overdue=0,
    admins_total=1,
    admins_without_mfa=[],
    mfa_required=False,
    password_min_length=12,
    common_password_entries=10000,
    default_password_users=[],
    session_timeout_s=28800,
    session_idle_timeout_s=1800,
    lockout_threshold=5,
    lockout_duration_s=900,
    bind_host="127.0.0.1",
    behind_tls_proxy=False,
    backups_dir="/srv/backups",
    backups_dir_writable=True,
    telemetry_unset=[],
    export_available=True,
    erasure_available=True,
)

# One change to the good state per check, and the check it must fail.
BREAKS = [
    ("encryption_at_rest", {"encryption_enabled": False}),
    ("key_age", {"key_age_days": 400.0}),
    ("key_age", {"key_age_days": None}),
    ("audit_chain", {"audit_ok": False, "audit_message": "line 7: mac mismatch"}),
    ("retention", {"retention_last_run": None}),
    ("retention", {"retention_overdue": 3}),
    ("admin_mfa", {"admins_without_mfa": ["root"]}),
    ("admin_mfa", {"admins_total": 0}),
    ("passwords", {"password_min_length": 8}),
    ("passwords", {"default_password_users": ["bob"]}),
    ("passwords", {"common_password_entries": 0}),
    ("session_timeout", {"session_timeout_s": 9 * 3600}),
    ("lockout", {"lockout_threshold": 50}),
    ("transport", {"bind_host": "0.0.0.0"}),
    ("backups", {"backups_dir": None, "backups_dir_writable": False}),
    ("telemetry_off", {"telemetry_unset": ["DO_NOT_TRACK"]}),
    ("subject_rights", {"erasure_available": False}),
]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_good_installation_passes_every_check(framework: str) -> None:
    report = run_checks(framework, GOOD).as_dict()
    assert report["framework"] == framework
    assert report["compliance_score"] == 100.0
    assert report["failed_checks"] == 0 and report["recommendations"] == []
    assert report["total_checks"] == len(checks_for(framework)) > 0


@pytest.mark.parametrize(("check_id", "change"), BREAKS)
def test_each_check_fails_on_its_own_fact(check_id: str, change: dict[str, object]) -> None:
    facts = replace(GOOD, **change)  # type: ignore[arg-type]
    report = run_checks("iso27001", facts)
    failed = [r for r in report.results if not r.passed]
    assert [r.check_id for r in failed] == [check_id]
    shown = report.as_dict()
    assert shown["failed_checks"] == 1
    assert shown["recommendations"] == [failed[0].recommendation]
    assert shown["compliance_score"] < 100.0


def test_transport_passes_behind_tls() -> None:
    report = run_checks("soc2", replace(GOOD, bind_host="0.0.0.0", behind_tls_proxy=True))
    transport = next(r for r in report.results if r.check_id == "transport")
    assert transport.passed and transport.evidence["behind_tls_proxy"] is True


def test_iso27001_runs_every_check_and_frameworks_differ() -> None:
    assert {c.check_id for c in checks_for("iso27001")} == {c.check_id for c in CHECKS}
    assert "subject_rights" in {c.check_id for c in checks_for("gdpr")}
    assert "subject_rights" not in {c.check_id for c in checks_for("soc2")}


def test_unknown_framework_is_refused() -> None:
    with pytest.raises(NotFoundError, match="hipaa"):
        checks_for("hipaa")


def test_each_run_is_an_audit_event_with_its_score() -> None:
    audit = RecordingAudit()
    when = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    service = ComplianceService(lambda: replace(GOOD, audit_ok=False), audit, clock=lambda: when)
    report = service.run("soc2", user_id="u_admin")
    assert report.started_at == "2026-11-26T12:00:00+00:00"
    [event] = audit.events
    assert event["event_type"] == "compliance_audit" and event["user_id"] == "u_admin"
    assert event["success"] is False
    assert event["details"]["failed"] == ["audit_chain"]
    assert event["details"]["compliance_score"] == report.score
