"""Which loader handles which file: a name -> factory table and a suffix lookup."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from xnai.adapters.loaders.docx import DocxLoader
from xnai.adapters.loaders.html import HtmlLoader
from xnai.adapters.loaders.pdf import PdfLoader
from xnai.adapters.loaders.text import TextLoader
from xnai.domain.errors import UnsupportedFileError
from xnai.domain.ports import Loader

LOADER_FACTORIES: dict[str, Callable[[], Loader]] = {
    "text": TextLoader,
    "html": HtmlLoader,
    "pdf": PdfLoader,
    "docx": DocxLoader,
}


def default_loaders() -> list[Loader]:
    """One instance of every built-in loader."""
    return [factory() for factory in LOADER_FACTORIES.values()]


def supported_suffixes(loaders: Sequence[Loader]) -> tuple[str, ...]:
    """Every suffix the loaders handle, in loader order."""
    return tuple(suffix for loader in loaders for suffix in loader.suffixes)


def loader_for(path: Path, loaders: Sequence[Loader]) -> Loader:
    """The first loader that handles the file's suffix (case-insensitive)."""
    suffix = path.suffix.lower()
    for loader in loaders:
        if suffix in loader.suffixes:
            return loader
    kind = f"'{suffix}'" if suffix else f"'{path.name}' (no extension)"
    supported = ", ".join(supported_suffixes(loaders))
    raise UnsupportedFileError(f"unsupported file type {kind} (supported: {supported})")
