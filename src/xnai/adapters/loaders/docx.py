"""Word (.docx) loader built on python-docx."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import docx
from docx.opc.exceptions import PackageNotFoundError
from docx.table import Table
from docx.text.paragraph import Paragraph
from lxml.etree import XMLSyntaxError

from xnai.adapters.loaders.text import normalise_newlines, require_data, require_text
from xnai.domain.errors import DocumentError
from xnai.domain.models import LoadedDocument

MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_HEADING_STYLE = re.compile(r"Heading ([1-9])")


def _paragraph(paragraph: Paragraph) -> str:
    """Paragraph text; headings become markdown heading lines so the chunker sees sections."""
    text = paragraph.text.strip()
    style = paragraph.style.name if paragraph.style is not None else ""
    match = _HEADING_STYLE.fullmatch(style or "")
    if text and match:
        return "#" * min(int(match.group(1)), 6) + " " + " ".join(text.split())
    if text and style == "Title":
        return "# " + " ".join(text.split())
    return text


def _table(table: Table) -> str:
    """One line per row, cells separated by ' | '; merged cells appear once."""
    lines = []
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            # A merged cell is returned once per grid column it spans; its XML element repeats.
            if cell._tc is not previous:
                cells.append(" ".join(cell.text.split()))
            previous = cell._tc
        if any(cells):
            lines.append(" | ".join(cells))
    return "\n".join(lines)


def _blocks(document: docx.document.Document) -> Iterator[str]:
    """Body paragraphs and tables in document order, as text."""
    for block in document.iter_inner_content():
        yield _paragraph(block) if isinstance(block, Paragraph) else _table(block)


def _open(data: bytes) -> docx.document.Document:
    """Parse the package; a file that is not a Word zip raises DocumentError."""
    try:
        return docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, PackageNotFoundError, KeyError, ValueError, XMLSyntaxError) as exc:
        raise DocumentError(f"corrupt DOCX: {exc}") from exc


class DocxLoader:
    """Loads Word documents: paragraphs, headings and tables in order."""

    name = "docx"
    version = "1"
    suffixes: tuple[str, ...] = (".docx",)

    def load(self, path: Path, data: bytes) -> LoadedDocument:
        """Render the body as markdown-ish text and take the title from the core properties."""
        require_data(data)
        document = _open(data)
        text = "\n\n".join(block for block in _blocks(document) if block)
        title = (document.core_properties.title or "").strip()
        return LoadedDocument(
            text=require_text(normalise_newlines(text)),
            title=title or path.stem,
            mime=MIME,
            loader=self.name,
            loader_version=self.version,
        )
