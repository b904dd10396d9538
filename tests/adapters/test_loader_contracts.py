"""The Loader contract over every built-in loader, on files written to tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contracts.loader_contract import LoaderContract, Sample
from tests.fixtures_docs import make_docx, minimal_pdf, noisy_html
from xnai.adapters.loaders import DocxLoader, HtmlLoader, PdfLoader, TextLoader
from xnai.domain.ports import Loader


class TestTextContract(LoaderContract):
    @pytest.fixture
    def loader(self) -> Loader:
        return TextLoader()

    @pytest.fixture
    def sample(self) -> Sample:
        return lambda text: f"# Pump manual\n\n{text}\n".encode()


class TestHtmlContract(LoaderContract):
    @pytest.fixture
    def loader(self) -> Loader:
        return HtmlLoader()

    @pytest.fixture
    def sample(self) -> Sample:
        return lambda text: noisy_html(text, "A second paragraph about the garden.").encode()


class TestPdfContract(LoaderContract):
    @pytest.fixture
    def loader(self) -> Loader:
        return PdfLoader()

    @pytest.fixture
    def sample(self) -> Sample:
        return lambda text: minimal_pdf(text, title="Pump manual")


class TestDocxContract(LoaderContract):
    @pytest.fixture
    def loader(self) -> Loader:
        return DocxLoader()

    @pytest.fixture
    def sample(self, tmp_path: Path) -> Sample:
        return lambda text: make_docx(tmp_path / "sample.docx", paragraphs=[text]).read_bytes()
