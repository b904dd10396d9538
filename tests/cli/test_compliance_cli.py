"""``xnai compliance`` and ``xnai privacy`` against a real data directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xnai.cli.main import app
from xnai.domain.errors import NotFoundError

runner = CliRunner()


@pytest.fixture
def env(env: Path) -> Path:
    """An initialised data directory."""
    assert runner.invoke(app, ["init"]).exit_code == 0
    return env


def test_compliance_run_reports_and_fails_on_a_failed_check(env: Path) -> None:
    result = runner.invoke(app, ["compliance", "run", "soc2", "--json"])
    assert result.exit_code == 1  # the first admin has no MFA and no backups are configured
    report = json.loads(result.output)
    assert report["framework"] == "soc2" and report["failed_checks"] >= 2
    text = runner.invoke(app, ["compliance", "run", "gdpr"])
    assert "checks passed" in text.output and "audit_chain" in text.output
    unknown = runner.invoke(app, ["compliance", "run", "hipaa"])
    assert isinstance(unknown.exception, NotFoundError)


def test_retention_then_audit_records_both(env: Path) -> None:
    result = runner.invoke(app, ["compliance", "retention"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["documents_removed"] == []
    tail = runner.invoke(app, ["audit", "tail", "-n", "5"]).output
    assert "retention" in tail


def test_privacy_export_and_erase(env: Path, tmp_path: Path) -> None:
    add = runner.invoke(app, ["users", "add", "dora", "--role", "editor"])
    assert add.exit_code == 0, add.output
    doc = tmp_path / "dora.md"
    doc.write_text("# Dora\n\nCANARY-DORA-19 ibis nesting notes.\n", encoding="utf-8")
    ingest = runner.invoke(app, ["ingest", str(doc), "--user", "dora"])
    assert ingest.exit_code == 0, ingest.output
    target = tmp_path / "export.json"
    exported = runner.invoke(app, ["privacy", "export", "dora", "-o", str(target)])
    assert exported.exit_code == 0, exported.output
    assert target.stat().st_mode & 0o777 == 0o600
    data = json.loads(target.read_text(encoding="utf-8"))
    assert data["account"]["role"] == "editor" and len(data["documents"]) == 1
    refused = runner.invoke(app, ["privacy", "erase", "dora"], input="n\n")
    assert refused.exit_code == 1
    erased = runner.invoke(app, ["privacy", "erase", "dora", "--yes"])
    assert erased.exit_code == 0, erased.output
    assert len(json.loads(erased.output)["documents_removed"]) == 1
    ask = runner.invoke(app, ["ask", "CANARY-DORA-19 ibis", "--json"])
    assert "CANARY-DORA" not in ask.output
    assert runner.invoke(app, ["audit", "verify"]).exit_code == 0
