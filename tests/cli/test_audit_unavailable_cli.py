"""On the command line, a privileged command fails with one ``error:`` line and exit status
2, and changes nothing, while the audit trail cannot be written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from tests.broken_audit import unwritable
from xnai.cli.main import app

runner = CliRunner()


def xnai(*args: str) -> subprocess.CompletedProcess[str]:
    """The real entry point in a child process, as a user runs it."""
    env = {**os.environ, "COLUMNS": "80", "TERM": "dumb"}
    return subprocess.run(
        [sys.executable, "-m", "xnai", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


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
