"""Optional packages: one error type and one message that says how to install them."""

from __future__ import annotations

import sys

import pytest

from xnai.adapters.index.bm25_index import Bm25LexicalIndex
from xnai.adapters.index.faiss_index import FaissVectorIndex
from xnai.adapters.optional import optional_import
from xnai.domain.errors import ConfigError, MissingPackageError, ModelError, ModelUnavailableError


def test_an_installed_package_is_imported() -> None:
    assert optional_import("json", feature="f", package="p", extra="e") is sys.modules["json"]


def test_a_missing_package_names_the_feature_the_package_and_the_extra() -> None:
    with pytest.raises(MissingPackageError) as info:
        optional_import("xnai_no_such_module", feature="the thing", package="no-such", extra="x")
    assert str(info.value) == (
        "the thing needs the optional package no-such (No module named 'xnai_no_such_module'): "
        "pip install no-such or pip install 'xnai[x]'"
    )


def test_the_error_is_what_callers_caught_before() -> None:
    for caught in (ConfigError, ModelError, ModelUnavailableError):
        assert issubclass(MissingPackageError, caught)


def test_install_and_alternative_can_be_told(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "xnai_broken", None)  # makes the import fail
    with pytest.raises(MissingPackageError, match=r"\): run make, or use another backend$"):
        optional_import(
            "xnai_broken",
            feature="f",
            package="p",
            extra="e",
            install="run make",
            otherwise="use another backend",
        )


@pytest.mark.parametrize(
    ("module", "build"), [("faiss", lambda: FaissVectorIndex(4)), ("bm25s", Bm25LexicalIndex)]
)
def test_the_indexes_say_which_extra_installs_them(
    monkeypatch: pytest.MonkeyPatch, module: str, build: object
) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ConfigError, match=r"needs the optional package .*pip install 'xnai\["):
        build()  # type: ignore[operator]
