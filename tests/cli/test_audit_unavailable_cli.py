"""On the command line, a privileged command fails with one ``error:`` line and exit status
2, and changes nothing, while the audit trail cannot be written."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tests.broken_audit import unwritable
from tests.cli.process import xnai
from xnai.cli.main import app

runner = CliRunner()


def test_user_creation_on_the_command_line_is_refused_when_audit_cannot_be_written(
    env: Path,
) -> None:
    assert runner.invoke(app, ["init"]).exit_code == 0
    with unwritable(env / "audit"):
        refused = xnai("users", "add", "bob")
    assert refused.returncode == 2, refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the audit trail cannot be written")
    assert "nothing was changed" in lines[0] and "password" not in refused.stdout
    listed = runner.invoke(app, ["users", "list", "--json"])
    assert '"bob"' not in listed.output
    assert xnai("users", "add", "bob").returncode == 0
