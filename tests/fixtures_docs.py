"""Builders of small real documents (PDF, DOCX, HTML) for tests; plain functions, no fixtures."""

from __future__ import annotations

import io
import random
from collections.abc import Sequence
from pathlib import Path

import docx
from pypdf import PdfReader, PdfWriter


def _pdf_string(text: str) -> bytes:
    """A PDF literal string: parentheses and backslashes escaped, Latin-1 encoded."""
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return b"(" + escaped.encode("latin-1") + b")"


def _page_objects(texts: Sequence[str], first: int) -> list[bytes]:
    """Page and content-stream objects (two per page) numbered from ``first``; font is 3 0 R."""
    objects: list[bytes] = []
    for index, text in enumerate(texts):
        content = first + 2 * index + 1
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
            b"/Resources << /Font << /F1 3 0 R >> >> >>" % content
        )
        stream = b"BT /F1 24 Tf 72 720 Td " + _pdf_string(text) + b" Tj ET" if text else b""
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    return objects


def minimal_pdf(text: str, *more_pages: str, title: str | None = None) -> bytes:
    """A hand-written PDF: one page per text in Helvetica, a correct xref, optional /Title."""
    texts = (text, *more_pages)
    kids = b" ".join(b"%d 0 R" % (4 + 2 * i) for i in range(len(texts)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(texts)),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        *_page_objects(texts, 4),
    ]
    if title is not None:
        objects.append(b"<< /Title " + _pdf_string(title) + b" >>")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    info = b" /Info %d 0 R" % len(objects) if title is not None else b""
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\n" % (len(objects) + 1, info)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def encrypted_pdf(text: str, user_password: str) -> bytes:
    """``minimal_pdf(text)`` encrypted with RC4 (needs no extra crypto package)."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(minimal_pdf(text))))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def random_bytes(size: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-random bytes."""
    return random.Random(seed).randbytes(size)


def make_docx(
    path: Path,
    *,
    heading: str | None = "Install",
    paragraphs: Sequence[str] = ("Run the installer.",),
    table: Sequence[Sequence[str]] = (),
    title: str | None = None,
) -> Path:
    """Write a Word file: a level-1 heading, paragraphs, then a table; return ``path``."""
    document = docx.Document()
    if heading is not None:
        document.add_heading(heading, level=1)
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for row, values in zip(grid.rows, table, strict=True):
            for cell, value in zip(row.cells, values, strict=True):
                cell.text = value
    if title is not None:
        document.core_properties.title = title
    document.save(str(path))
    return path


def noisy_html(*paragraphs: str, title: str = "Garden Notes") -> str:
    """A page whose main article holds ``paragraphs`` amid script, style, nav and footer noise."""
    body = "\n".join(f"<p>{text}</p>" for text in paragraphs)
    return f"""<!DOCTYPE html>
<html><head><title>{title}</title>
<style>body {{ color: red; }} .STYLE_NOISE {{ display: none }}</style>
<script>var tracking = "SCRIPT_NOISE"; console.log("hi");</script>
</head><body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/about">NAV_NOISE About us</a></li></ul></nav>
<main><article>
<h1>Growing tomatoes</h1>
{body}
<h2>Soil</h2>
<p>Use rich, well-drained soil with plenty of compost mixed in before planting.</p>
</article></main>
<footer>FOOTER_NOISE Copyright 2024 All rights reserved</footer>
<script>document.write("SCRIPT2_NOISE")</script>
</body></html>
"""
