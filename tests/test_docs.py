"""The documentation stays current with the code it describes."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import typer
from typer.main import get_command_name

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _generator() -> ModuleType:
    path = ROOT / "scripts" / "gen_config_reference.py"
    spec = importlib.util.spec_from_file_location("gen_config_reference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _commands(app: typer.Typer, prefix: str = "") -> set[str]:
    """Full names ("index verify") of every command registered on ``app`` and its groups."""
    names = {
        prefix + (info.name or get_command_name(info.callback.__name__))
        for info in app.registered_commands
        if info.callback is not None
    }
    for group in app.registered_groups:
        sub = group.typer_instance
        assert sub is not None
        name = group.name or sub.info.name
        names |= _commands(sub, f"{prefix}{name} ")
    return names


def test_config_reference_is_generated_from_settings() -> None:
    gen = _generator()
    committed = (DOCS / "reference" / "config.md").read_text(encoding="utf-8")
    assert gen.render() == committed, "run: python scripts/gen_config_reference.py"


def test_config_reference_notes_name_existing_keys() -> None:
    gen = _generator()
    stale = set(gen.NOTES) - set(gen.setting_keys())
    assert not stale, f"notes for settings that no longer exist: {sorted(stale)}"


def test_config_reference_lists_every_key() -> None:
    gen = _generator()
    page = (DOCS / "reference" / "config.md").read_text(encoding="utf-8")
    for key in gen.setting_keys():
        assert gen.env_name(tuple(key.split("."))) in page


def test_every_cli_command_is_documented() -> None:
    from xnai.cli.main import app

    page = (DOCS / "reference" / "cli.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^#{2,3} `xnai ([a-z][a-z -]*)`$", page, re.M))
    registered = _commands(app)
    assert registered, "no commands found on the Typer app"
    assert registered - documented == set(), "add a section to docs/reference/cli.md"
    assert documented - registered == set(), "docs/reference/cli.md names a removed command"
