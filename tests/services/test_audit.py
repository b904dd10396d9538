"""The Auditor: events in the seed's shape, compliance flags, safe details, erasure, retention."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.clock import FakeClock
from xnai.adapters.audit import JsonlAuditLog
from xnai.adapters.memory.audit import RecordingAudit
from xnai.adapters.security.keyring import FernetKeyRing
from xnai.bootstrap import Container
from xnai.domain.ports import AuditSink
from xnai.domain.rbac import Principal, Role
from xnai.services.audit import (
    EVENT_FLAGS,
    GDPR,
    PRIVILEGED_ACCESS,
    SOC2,
    Auditor,
    compliance_flags,
    safe_details,
)

SEED_FIELDS = [
    "timestamp",
    "event_id",
    "event_type",
    "severity",
    "source_ip",
    "user_id",
    "resource",
    "action",
    "success",
    "details",
    "compliance_flags",
]


@pytest.fixture
def clock() -> FakeClock[datetime]:
    return FakeClock(datetime(2024, 3, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
def auditor(tmp_path: Path, clock: FakeClock[datetime]) -> Auditor:
    keys = FernetKeyRing.open(tmp_path / "keys" / "keyring.json", create=True)
    return Auditor(JsonlAuditLog(tmp_path / "audit", keys), clock=clock)


def stored(auditor: Auditor) -> list[dict]:
    assert isinstance(auditor.log, JsonlAuditLog)
    return [json.loads(line) for line in auditor.log.path.read_text().splitlines()]


def test_an_event_has_the_seeds_fields_in_order(auditor: Auditor) -> None:
    e = auditor.event(
        "login_failure",
        action="login",
        resource="auth",
        user_id=None,
        success=False,
        severity="warning",
        source_ip="192.0.2.1",
        details={"username": "alice", "reason": "bad password"},
    )
    assert list(e) == SEED_FIELDS
    assert e["timestamp"] == "2024-03-01T12:00:00.000000+00:00"
    assert (e["success"], e["severity"], e["source_ip"]) == (False, "warning", "192.0.2.1")
    assert e["compliance_flags"] == [GDPR, SOC2]
    assert auditor.event("x", action="y")["event_id"] != e["event_id"]


def test_record_appends_a_sealed_line_that_verifies(auditor: Auditor) -> None:
    assert isinstance(auditor, AuditSink)
    auditor.record("logout", action="logout", user_id="u1", source_ip="::1")
    auditor.record("ingest", action="ingest", user_id="u1", details={"added": 2})
    lines = stored(auditor)
    assert [line["event_type"] for line in lines] == ["logout", "ingest"]
    assert {"seq", "prev", "key_id", "mac", "refs"} <= set(lines[0])
    assert auditor.verify().describe() == "OK: 2 lines"
    assert [e["event_type"] for e in auditor.tail(1)] == ["ingest"]


def test_query_text_is_stored_as_a_hash_and_chunk_ids_are_kept(auditor: Auditor) -> None:
    question = "What does the merger memo say about Project Falcon?"
    auditor.record(
        "query",
        action="search",
        user_id="u1",
        details={"query": question, "chunk_ids": ["c_1", "c_2"], "mode": "hybrid"},
    )
    details = stored(auditor)[0]["details"]
    assert "query" not in details
    assert details["query_sha256"] == hashlib.sha256(question.encode()).hexdigest()
    assert details["query_length"] == len(question)
    assert details["chunk_ids"] == ["c_1", "c_2"]
    assert "Falcon" not in auditor.log.path.read_text()  # type: ignore[attr-defined]


def test_secrets_are_never_stored() -> None:
    clean = safe_details({"password": "hunter2hunter2", "token": "abc", "username": 42})
    assert clean == {"password": "[redacted]", "token": "[redacted]", "username": "42"}


def test_details_are_reduced_to_json_types() -> None:
    when = datetime(2024, 1, 2, tzinfo=UTC)
    clean = safe_details(
        {"at": when, "ids": {"b", "a"}, "path": Path("/x"), "ratio": float("nan"), 3: (1, 2)}
    )
    assert clean == {
        "at": when.isoformat(),
        "ids": ["a", "b"],
        "path": "/x",
        "ratio": "nan",
        "3": [1, 2],
    }
    json.dumps(clean, allow_nan=False)


@pytest.mark.parametrize(
    ("event_type", "flags"),
    [
        ("login_success", [GDPR, SOC2]),
        ("login_failure", [GDPR, SOC2]),
        ("account_locked", [GDPR, SOC2]),
        ("logout", [GDPR, SOC2]),
        ("session_revoked", [GDPR, SOC2]),
        ("api_key_revoked", [GDPR, SOC2]),
        ("user_created", [GDPR, SOC2, PRIVILEGED_ACCESS]),
        ("role_changed", [GDPR, SOC2, PRIVILEGED_ACCESS]),
        ("password_reset", [GDPR, SOC2, PRIVILEGED_ACCESS]),
        ("account_unlocked", [GDPR, SOC2, PRIVILEGED_ACCESS]),
        ("mfa_enrolled", [GDPR, SOC2]),
        ("query", [GDPR]),
        ("ingest", [GDPR]),
        ("delete", [GDPR, SOC2, PRIVILEGED_ACCESS]),
        ("data_export", [GDPR, SOC2]),
        ("data_erasure", [GDPR, SOC2, PRIVILEGED_ACCESS]),
        ("retention", [GDPR, SOC2, PRIVILEGED_ACCESS]),
        ("permission_denied", [SOC2]),
        ("key_rotation", [SOC2, PRIVILEGED_ACCESS]),
        ("config_change", [SOC2, PRIVILEGED_ACCESS]),
        ("compliance_audit", [SOC2, PRIVILEGED_ACCESS]),
        ("something_new", [SOC2]),
    ],
)
def test_flags_follow_the_rule_table(event_type: str, flags: list[str]) -> None:
    assert compliance_flags(event_type, user_id="u1", success=True, details={}) == flags


def test_acting_on_another_account_is_privileged_access_to_personal_data() -> None:
    mine = compliance_flags("session_revoked", user_id="u1", success=True, details={})
    theirs = compliance_flags(
        "session_revoked", user_id="admin", success=True, details={"target_user": "u1"}
    )
    own = compliance_flags("data_export", user_id="u1", success=True, details={"target_user": "u1"})
    assert mine == [GDPR, SOC2]
    assert theirs == [GDPR, SOC2, PRIVILEGED_ACCESS]
    assert own == [GDPR, SOC2]


def test_using_an_admin_permission_is_privileged_only_when_it_succeeds() -> None:
    used = compliance_flags(
        "query", user_id="a", success=True, details={"permission": "admin:system"}
    )
    refused = compliance_flags(
        "permission_denied", user_id="v", success=False, details={"permission": "admin:system"}
    )
    reader = compliance_flags(
        "query", user_id="v", success=True, details={"permission": "read:documents"}
    )
    assert used == [GDPR, SOC2, PRIVILEGED_ACCESS]
    assert refused == [SOC2]
    assert reader == [GDPR]


def test_every_privileged_rule_is_also_security_relevant() -> None:
    assert all(SOC2 in flags for flags in EVENT_FLAGS.values() if PRIVILEGED_ACCESS in flags)


def test_events_about_and_pseudonymise_a_person(auditor: Auditor) -> None:
    auditor.record(
        "login_success",
        action="login",
        user_id="u1",
        source_ip="10.1.1.1",
        details={"username": "alice"},
    )
    auditor.record("login_success", action="login", user_id="u2", details={"username": "bob"})
    auditor.record(
        "role_changed",
        action="update",
        user_id="u2",
        details={"target_user": "u1", "role": "editor"},
    )
    auditor.record("user_updated", action="disable_user", user_id="u2", resource="user:alice")
    assert [e["seq"] for e in auditor.events_about("u1", also=["alice"])] == [1, 3, 4]
    assert auditor.pseudonymise("u1", also=["alice"]) == 3
    assert auditor.events_about("u1", also=["alice"]) == []
    text = auditor.log.path.read_text()  # type: ignore[attr-defined]
    assert "alice" not in text and "10.1.1.1" not in text and '"u1"' not in text
    assert auditor.verify().ok


def test_trim_days_keeps_the_retention_period(auditor: Auditor, clock: FakeClock[datetime]) -> None:
    for _ in range(3):
        auditor.record("logout", action="logout", user_id="u1")
        clock.now += timedelta(days=10)
    assert auditor.trim_days(15) == 2  # now = day 30: days 0 and 10 are older than 15 days
    assert [e["seq"] for e in auditor.tail(10)] == [3]
    assert auditor.verify().describe() == "OK: 1 lines"


def test_recording_audit_keeps_events_in_memory() -> None:
    audit = RecordingAudit()
    assert isinstance(audit, AuditSink)
    audit.record("query", action="search", user_id="u1", details={"chunk_ids": ["c"]})
    assert audit.events[0]["event_type"] == "query"
    assert audit.events[0]["details"] == {"chunk_ids": ["c"]}


def test_lists_of_people_are_found_and_stored_as_strings(auditor: Auditor) -> None:
    auditor.record(
        "access_control",
        action="collection_update",
        user_id="u_admin",
        details={"readable_users": ["alice", 7], "readable_roles": ["viewer"]},
    )
    [line] = auditor.events_about("alice")
    assert line["details"]["readable_users"] == ["alice", "7"]
    assert set(line["refs"]) == {"user_id", "details.readable_users.0", "details.readable_users.1"}
    assert line["compliance_flags"] == [SOC2, PRIVILEGED_ACCESS]


def test_the_container_audits_uploads_and_deletions(container: Container) -> None:
    assert isinstance(container.audit, Auditor)
    editor = Principal("u_ed", "erin", Role.EDITOR)
    admin = Principal("u_ad", "ada", Role.ADMIN)
    report = container.ingestion.ingest_uploads(
        [("notes.md", b"# Notes\n\nThe valve opens at noon.\n"), ("bad.exe", b"MZ")],
        user="erin",
        principal=editor,
        source_ip="198.51.100.4",
    )
    doc = container.ingestion.remove_document(report.added[0], principal=admin)
    ingest, delete = container.audit.tail(2)
    assert (ingest["event_type"], ingest["user_id"], ingest["source_ip"]) == (
        "ingest",
        "u_ed",
        "198.51.100.4",
    )
    assert (ingest["success"], ingest["severity"]) == (False, "warning")  # one file failed
    assert ingest["details"]["added"] == list(report.added)
    assert [f[0] for f in ingest["details"]["failed"]] == [f[0] for f in report.failed]
    assert (delete["event_type"], delete["user_id"]) == ("delete", "u_ad")
    assert delete["details"]["doc_id"] == doc.doc_id
    assert delete["details"]["chunks_removed"] == len(doc.chunk_ids)
    audit_file = container.settings.data_dir / "audit" / "audit.jsonl"
    assert audit_file.stat().st_mode & 0o777 == 0o600
    assert container.audit.verify().ok
