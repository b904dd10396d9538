"""Behaviour every Loader adapter must share; subclass and override `loader` and `sample`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures_docs import random_bytes
from xnai.domain.errors import DocumentError
from xnai.domain.ports import Loader

Sample = Callable[[str], bytes]
TEXT = "The pump runs at 1450 rpm and needs new bearings every spring."


class LoaderContract:
    """Mixin of contract tests; a `Test...` subclass supplies `loader` and `sample(text)`,
    which makes a file of the loader's format holding ``text``."""

    @pytest.fixture
    def loader(self) -> Loader:
        """The adapter under test (subclasses override this fixture)."""
        pytest.fail("LoaderContract subclasses must override the `loader` fixture")

    @pytest.fixture
    def sample(self) -> Sample:
        """Bytes of a file of the loader's format holding a text (subclasses override)."""
        pytest.fail("LoaderContract subclasses must override the `sample` fixture")

    def path(self, loader: Loader, tmp_path: Path, data: bytes) -> Path:
        """Write ``data`` to a file with the loader's first suffix."""
        path = tmp_path / f"manual{loader.suffixes[0]}"
        path.write_bytes(data)
        return path

    def test_satisfies_the_port(self, loader: Loader) -> None:
        assert isinstance(loader, Loader)
        assert loader.name and loader.version and loader.suffixes
        assert all(s.startswith(".") and s == s.lower() for s in loader.suffixes)

    def test_loads_the_text_of_its_format(
        self, loader: Loader, sample: Sample, tmp_path: Path
    ) -> None:
        data = sample(TEXT)
        doc = loader.load(self.path(loader, tmp_path, data), data)
        assert " ".join(TEXT.split()) in " ".join(doc.text.split())
        assert isinstance(doc.title, str) and doc.mime
        assert (doc.loader, doc.loader_version) == (loader.name, loader.version)

    def test_loading_is_deterministic(self, loader: Loader, sample: Sample, tmp_path: Path) -> None:
        data = sample(TEXT)
        path = self.path(loader, tmp_path, data)
        assert loader.load(path, data) == loader.load(path, data)

    def test_an_empty_file_is_a_document_error(self, loader: Loader, tmp_path: Path) -> None:
        with pytest.raises(DocumentError):
            loader.load(self.path(loader, tmp_path, b""), b"")

    def test_random_bytes_are_a_document_error(self, loader: Loader, tmp_path: Path) -> None:
        data = b"\x89PNG\r\n\x1a\n" + random_bytes(4000)
        with pytest.raises(DocumentError):
            loader.load(self.path(loader, tmp_path, data), data)
