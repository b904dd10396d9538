"""What both llama.cpp backends do before loading: the runtime import and the model file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from xnai.adapters.llm.ggml import import_runtime, model_file
from xnai.domain.errors import MissingPackageError, ModelUnavailableError


def test_the_runtime_waits_passively_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert import_runtime("json", feature="f", package="p", extra="e").__name__ == "json"
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    import_runtime("json", feature="f", package="p", extra="e")
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_a_missing_runtime_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    with pytest.raises(MissingPackageError, match="the backend needs the optional package pkg"):
        import_runtime("xnai_no_such_module", feature="the backend", package="pkg", extra="x")


def test_model_file_is_a_path_to_an_existing_file(tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert model_file(gguf) == gguf
    with pytest.raises(ModelUnavailableError, match="model file not found"):
        model_file(tmp_path / "absent.gguf")
    with pytest.raises(ModelUnavailableError):
        model_file(tmp_path)
