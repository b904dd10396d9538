"""``xnai ask`` goes through the same guard as the HTTP routes: deadline and breaker."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from xnai.cli.main import app
from xnai.domain.errors import ModelTimeoutError

runner = CliRunner()


def test_ask_gives_up_on_a_hung_model_at_the_deadline(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fault = tmp_path / "fault"
    monkeypatch.setenv("XNAI_MODELS__FAKE_FAULT_FILE", str(fault))
    monkeypatch.setenv("XNAI_MODELS__TIMEOUT_S", "0.3")
    monkeypatch.setenv("XNAI_MODELS__RETRY_ATTEMPTS", "1")
    doc = tmp_path / "pump.md"
    doc.write_text("# Pump\n\nThe coolant pump runs at 1450 rpm.\n")
    assert runner.invoke(app, ["ingest", str(doc)]).exit_code == 0
    fault.write_text("hang")
    try:
        result = runner.invoke(app, ["ask", "How fast does the coolant pump run?"])
    finally:
        fault.write_text("ok")  # lets the left-behind call finish
    assert isinstance(result.exception, ModelTimeoutError), result.output
    assert "did not finish within 0.3 s" in str(result.exception)
    result = runner.invoke(app, ["ask", "How fast does the coolant pump run?"])
    assert result.exit_code == 0 and "1450 rpm" in result.output
