"""``xnai audit verify`` and ``xnai audit tail`` over the real log of CLI commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xnai.cli.main import app

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture
def history(env: Path, tmp_path: Path) -> Path:
    """A library where two documents were ingested and one removed: three audit lines (the
    ingest's commit, the ingest run, the removal)."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "a.md").write_text("# Alpha\n\nThe turbine spins at 3000 rpm.\n")
    (lib / "b.md").write_text("# Beta\n\nCoolant flows through the valve.\n")
    assert invoke("ingest", str(lib), "--user", "maria")[0] == 0
    code, out = invoke("remove", str(lib / "b.md"))
    assert code == 0, out
    return env / "audit" / "audit.jsonl"


def test_ingest_and_remove_are_audited_and_tail_prints_json_lines(
    history: Path, tmp_path: Path
) -> None:
    code, out = invoke("audit", "tail", "-n", "5")
    assert code == 0, out
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["event_type"] for e in events] == ["ingest", "ingest", "delete"]
    commit, ingest, delete = events
    assert [commit["action"], ingest["action"]] == ["commit", "files"]
    for event in (commit, ingest):
        assert event["user_id"] == "local" and event["details"]["ingested_by"] == "maria"
        assert sorted(Path(s).name for s in event["details"]["added"]) == ["a.md", "b.md"]
        assert event["compliance_flags"] == ["GDPR"]
    assert commit["details"]["generation"] == ingest["details"]["generation"]
    assert delete["details"]["source"] == str((tmp_path / "lib" / "b.md").resolve())
    assert delete["details"]["chunks_removed"] >= 1
    assert delete["compliance_flags"] == ["GDPR", "SOC2", "PRIVILEGED_ACCESS"]
    code, out = invoke("audit", "tail", "-n", "1")
    assert [json.loads(line)["event_type"] for line in out.splitlines()] == ["delete"]


def test_verify_passes_on_an_intact_log(history: Path) -> None:
    code, out = invoke("audit", "verify")
    assert (code, out.strip()) == (0, "OK: 3 lines")


def test_verify_names_a_modified_line(history: Path) -> None:
    lines = history.read_text().splitlines(keepends=True)
    lines[2] = lines[2].replace('"delete"', '"deletx"', 1)
    history.write_text("".join(lines))
    code, out = invoke("audit", "verify")
    assert code == 1
    assert "line 3: MAC mismatch" in out


def test_verify_names_a_truncated_end(history: Path) -> None:
    history.write_text(history.read_text().splitlines(keepends=True)[0])
    code, out = invoke("audit", "verify")
    assert code == 1
    assert "line 2:" in out and "cut off the end" in out


def test_verify_of_a_new_data_directory_is_ok(env: Path) -> None:
    assert invoke("audit", "verify") == (0, "OK: 0 lines\n")


def test_verify_fails_when_the_anchor_is_deleted_and_the_log_cut(history: Path) -> None:
    history.write_text(history.read_text().splitlines(keepends=True)[0])
    (history.parent / "audit.anchor.json").unlink()
    code, out = invoke("audit", "verify")
    assert code == 1 and "anchor file is missing" in out


def test_verify_fails_when_the_whole_audit_directory_is_deleted(history: Path) -> None:
    last_seq = len(history.read_text().splitlines())
    for path in history.parent.iterdir():
        path.unlink()
    code, out = invoke("audit", "verify")
    assert code == 1 and f"database anchor records seq {last_seq} but" in out
