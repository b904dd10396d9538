"""PDF loader built on pypdf."""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError

from xnai.adapters.loaders.text import normalise_newlines, require_data
from xnai.domain.errors import DocumentError
from xnai.domain.models import LoadedDocument

# pypdf logs a warning for every recoverable defect; users only need the errors we raise.
logging.getLogger("pypdf").setLevel(logging.ERROR)

NO_TEXT_MESSAGE = "PDF has no extractable text (scanned image?)"


def _open(data: bytes) -> PdfReader:
    """Parse the file structure, unlocking it with the empty password when encrypted."""
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        locked = reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED
    except DependencyError as exc:
        raise DocumentError(f"cannot decrypt PDF: {exc}") from exc
    # pypdf raises many exception types (PdfReadError, ValueError, KeyError...) on damaged input.
    except Exception as exc:
        raise DocumentError(f"corrupt PDF: {exc}") from exc
    if locked:
        raise DocumentError("PDF is encrypted with a password")
    return reader


def _pages_text(reader: PdfReader) -> str:
    """Text of every page, pages separated by a blank line."""
    try:
        pages = [page.extract_text() for page in reader.pages]
    except Exception as exc:  # damaged page trees and content streams, as in _open
        raise DocumentError(f"corrupt PDF: {exc}") from exc
    texts = (normalise_newlines(page).replace("\x00", "").strip() for page in pages)
    return "\n\n".join(text for text in texts if text)


def _title(reader: PdfReader) -> str | None:
    """The document-information title, when present and readable."""
    try:
        title = reader.metadata.title if reader.metadata else None
    except Exception:  # a broken info dictionary must not lose the text
        return None
    return title.strip() if isinstance(title, str) and title.strip() else None


class PdfLoader:
    """Loads the text layer of .pdf files."""

    name = "pdf"
    version = "1"
    suffixes: tuple[str, ...] = (".pdf",)

    def load(self, path: Path, data: bytes) -> LoadedDocument:
        """Extract the text of every page; scanned or damaged files raise DocumentError."""
        require_data(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = _open(data)
            text = _pages_text(reader)
            title = _title(reader)
        if not text:
            raise DocumentError(NO_TEXT_MESSAGE)
        return LoadedDocument(
            text=text,
            title=title or path.stem,
            mime="application/pdf",
            loader=self.name,
            loader_version=self.version,
        )
