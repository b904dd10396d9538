"""``xnai --version`` prints the version on its own, as a user runs it."""

from __future__ import annotations

from tests.cli.process import xnai
from xnai import __version__


def test_version_prints_the_version_and_exits_zero_without_a_command() -> None:
    ran = xnai("--version")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == f"xnai {__version__}"
    assert ran.stderr == ""


def test_version_needs_no_data_directory_or_configuration() -> None:
    ran = xnai("--config", "no-such-file.toml", "--version")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == f"xnai {__version__}"
