"""Compliance self-audits, retention and data subject rights over HTTP, on the real stack."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyotp
import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import bearer, password_of, token_for
from xnai.api.app import create_app
from xnai.bootstrap import Container
from xnai.domain.rbac import LOCAL_ADMIN, Role
from xnai.services.audit import Auditor
from xnai.services.compliance import FRAMEWORKS, checks_for


def _checks(report: dict[str, object]) -> dict[str, dict[str, object]]:
    return {r["check_id"]: r for r in report["results"]}  # type: ignore[attr-defined, index]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_report_has_the_seed_shape(client: TestClient, framework: str) -> None:
    response = client.get(f"/v1/admin/compliance/{framework}")
    assert response.status_code == 200
    report = response.json()
    assert report["framework"] == framework
    assert {"started_at", "completed_at", "compliance_score", "recommendations"} <= set(report)
    assert report["total_checks"] == len(checks_for(framework))
    assert report["passed_checks"] + report["failed_checks"] == report["total_checks"]
    for result in report["results"]:
        assert result["status"] in ("passed", "failed") and isinstance(result["evidence"], dict)


def test_checks_follow_the_real_state(
    client: TestClient, seeded: Container, tmp_path: Path
) -> None:
    before = _checks(client.get("/v1/admin/compliance/iso27001").json())
    # A fresh installation: encrypted, a fresh key, a verifying audit chain, loopback only.
    for passing in ("encryption_at_rest", "key_age", "audit_chain", "transport", "lockout"):
        assert before[passing]["status"] == "passed", before[passing]
    assert before["admin_mfa"]["evidence"]["admins_without_mfa"] == ["admin"]
    assert before["backups"]["status"] == "failed"
    assert before["retention"]["status"] == "failed"  # the job never ran

    # Enrol the admin in TOTP, configure backups, run retention: those checks turn green.
    admin = seeded.auth.authenticate(token_for(seeded, "admin")).principal
    secret, _uri = seeded.auth.begin_mfa_enrolment(admin, password_of("admin"))
    seeded.auth.confirm_mfa_enrolment(admin, pyotp.TOTP(secret).now())
    backups = tmp_path / "backups"
    backups.mkdir()
    seeded.settings.enterprise.compliance.backups_dir = backups
    assert client.post("/v1/admin/retention").status_code == 200
    after = _checks(client.get("/v1/admin/compliance/iso27001").json())
    for fixed in ("admin_mfa", "backups", "retention"):
        assert after[fixed]["status"] == "passed", after[fixed]

    # An account with a vendor default password, and a tampered audit log: both caught.
    seeded.auth.create_user(LOCAL_ADMIN, "legacy", Role.VIEWER, password_of("legacy"))
    user = seeded.auth.repo.user_by_name("legacy")
    assert user is not None
    seeded.auth.repo.set_password(
        user.user_id, seeded.auth.hasher.hash("changeme"), user.created_at
    )
    log = seeded.settings.data_dir / "audit" / "audit.jsonl"
    lines = log.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1].replace('"success":true', '"success":false', 1)
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    broken = _checks(client.get("/v1/admin/compliance/soc2").json())
    assert broken["passwords"]["evidence"]["accounts_with_default_password"] == ["legacy"]
    assert broken["audit_chain"]["status"] == "failed"
    assert "line 2" in broken["audit_chain"]["evidence"]["result"]


def test_unknown_framework_is_404_and_viewers_are_refused(
    client: TestClient, seeded: Container
) -> None:
    assert client.get("/v1/admin/compliance/hipaa").status_code == 404
    viewer = bearer(token_for(seeded, "vera", Role.VIEWER))
    assert client.get("/v1/admin/compliance/gdpr", headers=viewer).status_code == 403


def test_each_run_is_an_audit_event(client: TestClient, seeded: Container) -> None:
    client.get("/v1/admin/compliance/gdpr")
    assert isinstance(seeded.audit, Auditor)
    events = [e for e in seeded.audit.events if e["event_type"] == "compliance_audit"]
    assert events and events[-1]["details"]["framework"] == "gdpr"
    assert "PRIVILEGED_ACCESS" in events[-1]["compliance_flags"]


def test_scheduled_runs_start_with_the_server(seeded: Container) -> None:
    seeded.settings.enterprise.compliance.frameworks = ["gdpr", "ccpa"]
    with TestClient(create_app(seeded, warm=False, schedule=True)):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not seeded.state.get("last_run:retention"):
            time.sleep(0.05)
    for name in ("compliance:gdpr", "compliance:ccpa", "retention"):
        assert seeded.state.get(f"last_run:{name}"), name
    ran = {e["details"].get("framework") for e in seeded.audit.events}  # type: ignore[attr-defined]
    assert {"gdpr", "ccpa"} <= ran


CANARY = "CANARY-ERASE-5d1c quokka migration corridor"


def test_erasure_leaves_no_trace_a_query_can_reach(client: TestClient, seeded: Container) -> None:
    alice = bearer(token_for(seeded, "alice", Role.EDITOR))
    key = client.post("/v1/auth/api-keys", json={"name": "laptop"}, headers=alice).json()
    up = client.post(
        "/v1/documents",
        files={"files": ("notes.md", f"# Field notes\n\n{CANARY}.\n".encode(), "text/markdown")},
        headers=alice,
    )
    assert up.status_code == 201 and up.json()["added"], up.text
    query = {"query": CANARY, "generate": False, "top_k": 20}
    assert CANARY in json.dumps(client.post("/v1/query", json=query).json())

    exported = client.get("/v1/admin/users/alice/export").json()
    assert exported["account"]["username"] == "alice"
    assert [d["title"] for d in exported["documents"]] == ["Field notes"]
    assert any(e["event_type"] == "login_success" for e in exported["audit_events"])

    erased = client.post("/v1/admin/users/alice/erase")
    assert erased.status_code == 200, erased.text
    assert len(erased.json()["documents_removed"]) == 1
    assert erased.json()["audit_lines_pseudonymised"] > 0

    for mode in ("dense", "lexical", "hybrid"):
        body = client.post("/v1/query", json={**query, "mode": mode}).json()
        assert "CANARY-ERASE" not in json.dumps(body)
    assert not list((seeded.settings.data_dir / "originals").glob("*"))
    assert client.get("/v1/admin/users/alice/export").status_code == 404
    assert client.get("/v1/auth/me", headers=bearer(key["api_key"])).status_code == 401
    assert client.get("/v1/auth/me", headers=alice).status_code == 401
    log = (seeded.settings.data_dir / "audit" / "audit.jsonl").read_text(encoding="utf-8")
    assert "alice" not in log
    assert client.get("/v1/admin/audit/verify").json()["ok"] is True


def test_the_last_admin_cannot_be_erased(client: TestClient) -> None:
    assert client.post("/v1/admin/users/admin/erase").status_code == 409
