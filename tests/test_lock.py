"""The lock file pins every dependency by version and hash, and the running environment is
the locked one (`make install` installs exactly requirements/lock.txt)."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "lock.txt"
BUILD = ROOT / "requirements" / "build.txt"
# Extras that `make install` does not install, so they are not locked.
NOT_LOCKED = {
    "llama": "built from source by scripts/install-llama.sh with CPU-safe flags",
    "kokoro": "opt-in: its model and voice files are not distributable",
}


def pins(path: Path) -> dict[str, tuple[str, list[str], Requirement]]:
    """Each requirement of a pip-compile file: name -> (version, hashes, requirement)."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    out: dict[str, tuple[str, list[str], Requirement]] = {}
    for line in text.splitlines():
        statement = line.split(" #", 1)[0].strip()
        if not statement or statement.startswith("#"):
            continue
        hashes = re.findall(r"--hash=(sha256:[0-9a-f]{64})", statement)
        requirement = Requirement(re.sub(r"\s*--hash=\S+", "", statement))
        versions = [s.version for s in requirement.specifier if s.operator == "=="]
        out[canonicalize_name(requirement.name)] = (
            versions[0] if len(versions) == 1 else "",
            hashes,
            requirement,
        )
    return out


def declared() -> list[Requirement]:
    """The dependencies pyproject.toml names for the core and the locked extras."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = list(project["dependencies"])
    for extra, deps in project["optional-dependencies"].items():
        if extra not in NOT_LOCKED:
            names += deps
    lock_in = (ROOT / "requirements" / "lock.in").read_text(encoding="utf-8").splitlines()
    names += [line for line in lock_in if line.strip() and not line.startswith("#")]
    return [Requirement(n) for n in names]


@pytest.mark.parametrize("path", [LOCK, BUILD], ids=["lock", "build"])
def test_every_locked_line_is_an_exact_version_with_hashes(path: Path) -> None:
    locked = pins(path)
    assert locked, path
    loose = [name for name, (version, hashes, _) in locked.items() if not version or not hashes]
    assert loose == []


def test_every_dependency_of_the_project_and_its_extras_is_locked() -> None:
    locked = pins(LOCK)
    missing, outside = [], []
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        if name not in locked:
            missing.append(str(requirement))
        elif not requirement.specifier.contains(locked[name][0], prereleases=True):
            outside.append(f"{requirement} but locked {locked[name][0]}")
        missing += [f"{name}[{e}]" for e in requirement.extras if not _extra_locked(name, e)]
    assert missing == [] and outside == [], "run `make lock`"


def _extra_locked(name: str, extra: str) -> bool:
    """True when what ``name[extra]`` adds is in the lock (the lock strips extras)."""
    locked = pins(LOCK)
    added = [Requirement(line) for line in metadata.requires(name) or []]
    return all(
        canonicalize_name(r.name) in locked
        for r in added
        if r.marker and r.marker.evaluate({"extra": extra}) and not r.marker.evaluate({"extra": ""})
    )


def test_the_running_environment_has_exactly_the_locked_versions() -> None:
    wrong = []
    for name, (version, _, requirement) in pins(LOCK).items():
        if requirement.marker and not requirement.marker.evaluate():
            continue
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "not installed"
        if installed != version:
            wrong.append(f"{name}: locked {version}, installed {installed}")
    assert wrong == [], "run `make install`"


def test_the_makefile_locks_every_extra_but_the_named_ones() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    line = re.search(r"^LOCK_EXTRAS := (.*)$", makefile, re.MULTILINE)
    assert line is not None
    assert set(line.group(1).split()) == set(project["optional-dependencies"]) - set(NOT_LOCKED)


def test_the_llama_build_script_builds_the_pinned_version() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    (pin,) = project["optional-dependencies"]["llama"]
    script = (ROOT / "scripts" / "install-llama.sh").read_text(encoding="utf-8")
    version = re.search(r"^VERSION=(\S+)$", script, re.MULTILINE)
    assert version is not None and pin == f"llama-cpp-python=={version.group(1)}"
