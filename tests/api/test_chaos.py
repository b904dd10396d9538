"""``make chaos`` as a test: the breaker's three steps over HTTP against ``xnai serve``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "chaos.py"


def load_chaos() -> ModuleType:
    spec = importlib.util.spec_from_file_location("chaos", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defined
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_breaker_opens_degrades_and_recovers_against_xnai_serve() -> None:
    lines: list[str] = []
    violations = load_chaos().run(reset_timeout=2.0, say=lines.append)
    output = "\n".join(lines)
    assert violations == [], output
    for step in ("1. normal operation", "2. activation", "3. recovery"):
        assert step in output
    checks = [line for line in lines if line.startswith("  ok ")]
    assert len(checks) >= 18, output
