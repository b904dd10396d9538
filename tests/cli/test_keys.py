"""``xnai init`` makes the key file; ``xnai keys status`` and ``xnai keys rotate``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xnai.adapters.security.keyring import FernetKeyRing
from xnai.cli.main import app
from xnai.domain.errors import ConfigError

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def key_material(data: Path) -> list[str]:
    return [k["key"] for k in json.loads((data / "keys" / "master.key").read_text())["keys"]]


def test_init_creates_the_key_file_and_prints_its_path(env: Path) -> None:
    code, out = invoke("init")
    assert code == 0, out
    key_file = env / "keys" / "master.key"
    assert str(key_file) in out.replace("\n", "")
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_status_shows_ids_and_ages_never_key_material(env: Path) -> None:
    invoke("init")
    code, out = invoke("keys", "status")
    assert code == 0, out
    assert "current" in out and "0 days ago" in out
    code, out = invoke("keys", "status", "--json")
    status = json.loads(out)
    assert status["current_key_age_days"] == 0 and not status["rotation_pending"]
    assert [k["state"] for k in status["keys"]] == ["current"]
    for material in key_material(env):
        assert material not in out


def test_rotate_reencrypts_and_a_question_still_finds_its_source(env: Path, tmp_path: Path) -> None:
    doc = tmp_path / "kiwi.md"
    doc.write_text("# Kiwi birds\n\nThe kiwi is a flightless bird that lays huge eggs.\n")
    assert invoke("ingest", str(doc))[0] == 0
    (old,) = key_material(env)
    code, out = invoke("keys", "rotate")
    assert code == 0, out
    assert "rotated to key" in out and "retired" in out
    assert "re-encrypted 2 documents and chunks" in out
    (new,) = key_material(env)
    assert new != old and old not in out and new not in out
    code, out = invoke("keys", "status", "--json")
    states = [k["state"] for k in json.loads(out)["keys"]]
    assert states == ["current", "retired"]
    code, out = invoke("ask", "flightless bird eggs", "--json")
    assert code == 0, out
    assert json.loads(out)["sources"][0]["title"] == "Kiwi birds"


def test_rotate_with_keys_from_the_environment(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = FernetKeyRing.generate_key(), FernetKeyRing.generate_key()
    monkeypatch.setenv("XNAI_ENTERPRISE__SECURITY__MASTER_KEY", old)
    doc = tmp_path / "kiwi.md"
    doc.write_text("# Kiwi birds\n\nThe kiwi is a flightless bird that lays huge eggs.\n")
    assert invoke("ingest", str(doc))[0] == 0
    result = runner.invoke(app, ["keys", "rotate"])
    assert isinstance(result.exception, ConfigError)
    assert "NEW,OLD" in str(result.exception)
    monkeypatch.setenv("XNAI_ENTERPRISE__SECURITY__MASTER_KEY", f"{new},{old}")
    code, out = invoke("keys", "rotate")
    assert code == 0, out
    assert "completed the unfinished rotation" in out and "remove the old key" in out
    monkeypatch.setenv("XNAI_ENTERPRISE__SECURITY__MASTER_KEY", new)
    code, out = invoke("ask", "flightless bird eggs", "--json")
    assert code == 0, out
    assert json.loads(out)["sources"][0]["title"] == "Kiwi birds"
    assert not (env / "keys").exists()
