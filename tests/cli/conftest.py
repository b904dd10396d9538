"""Command-line fixtures: every invocation reads a temp data directory with fake models."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The data directory the commands use (through XNAI_* variables)."""
    data = tmp_path / "data"
    monkeypatch.setenv("XNAI_STORAGE__DATA_DIR", str(data))
    monkeypatch.setenv("XNAI_MODELS__EMBEDDER_BACKEND", "fake")
    monkeypatch.setenv("XNAI_MODELS__LLM_BACKEND", "fake")
    return data
