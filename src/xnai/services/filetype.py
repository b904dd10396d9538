"""What a file's bytes are, whether they agree with its extension, and ZIP expansion limits.

Every file is judged by its content before a parser sees it: an executable renamed
``.pdf``, a ZIP archive that is not a Word document, or a PDF named ``.txt`` is refused
with a reason. Word files are ZIP archives; their central directory is checked against
the expansion limits before anything is inflated, so a zip bomb costs a directory read.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass
from enum import StrEnum

from xnai.domain.errors import DocumentError, UnsupportedFileError

MB = 1024 * 1024


class Kind(StrEnum):
    """What a file's content is, as far as its bytes tell."""

    PDF = "pdf"
    DOCX = "docx"
    ZIP = "zip"
    HTML = "html"
    TEXT = "text"
    EXECUTABLE = "executable"
    BINARY = "binary"


@dataclass(frozen=True)
class Sniffed:
    """The kind of a file's content and a phrase naming it for messages."""

    kind: Kind
    description: str


@dataclass(frozen=True)
class ArchiveLimits:
    """How far a ZIP-based document (.docx) may expand when read."""

    max_total_bytes: int = 100 * MB
    max_ratio: float = 200.0
    max_members: int = 1000


# Members smaller than this are not judged by their ratio: small XML parts compress very
# well and their expansion is bounded by the total anyway.
RATIO_GRACE_BYTES = 1 * MB

_ZIP_LOCAL = b"PK\x03\x04"
_ZIP_CENTRAL = b"PK\x01\x02"
_ZIP_END = b"PK\x05\x06"
_ZIP_END_SIZE = 22
_DOCX_MAIN = "word/document.xml"
_DOCX_CONTENT_TYPE = b"wordprocessingml.document.main+xml"

# Signatures at offset 0 of formats that are never a document we read.
_SIGNATURES: tuple[tuple[bytes, Kind, str], ...] = (
    (b"\x7fELF", Kind.EXECUTABLE, "an ELF executable"),
    (b"\xfe\xed\xfa\xce", Kind.EXECUTABLE, "a Mach-O executable"),
    (b"\xfe\xed\xfa\xcf", Kind.EXECUTABLE, "a Mach-O executable"),
    (b"\xce\xfa\xed\xfe", Kind.EXECUTABLE, "a Mach-O executable"),
    (b"\xcf\xfa\xed\xfe", Kind.EXECUTABLE, "a Mach-O executable"),
    (b"\xca\xfe\xba\xbe", Kind.EXECUTABLE, "a Mach-O or Java class file"),
    (b"\x00asm", Kind.EXECUTABLE, "a WebAssembly module"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", Kind.BINARY, "a legacy or encrypted Office file"),
    (b"\x1f\x8b", Kind.BINARY, "a gzip archive"),
    (b"\xfd7zXZ\x00", Kind.BINARY, "an xz archive"),
    (b"7z\xbc\xaf\x27\x1c", Kind.BINARY, "a 7-Zip archive"),
    (b"Rar!\x1a\x07", Kind.BINARY, "a RAR archive"),
    (b"\x28\xb5\x2f\xfd", Kind.BINARY, "a Zstandard archive"),
    (b"\x89PNG\r\n\x1a\n", Kind.BINARY, "a PNG image"),
    (b"\xff\xd8\xff", Kind.BINARY, "a JPEG image"),
    (b"GIF87a", Kind.BINARY, "a GIF image"),
    (b"GIF89a", Kind.BINARY, "a GIF image"),
)
# The WHATWG MIME sniffing patterns for HTML, each followed by a space or '>'.
_HTML_TAGS = (
    b"<!doctype html",
    b"<html",
    b"<head",
    b"<script",
    b"<iframe",
    b"<h1",
    b"<div",
    b"<font",
    b"<table",
    b"<a",
    b"<style",
    b"<title",
    b"<b",
    b"<body",
    b"<br",
    b"<p",
    b"<!--",
)
_TEXT_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")  # UTF-32 BOMs start like UTF-16's
_SAMPLE = 64 * 1024
_MAX_CONTROL_RATIO = 0.05
# C0 control bytes other than tab, newline, vertical tab, form feed, return and escape.
_CONTROL_BYTES = bytes(b for b in range(0x20) if b not in b"\t\n\v\f\r\x1b")

TEXTUAL = (Kind.TEXT, Kind.HTML)
# What the content of each supported extension must be, and how messages name it.
EXPECTED: dict[str, tuple[tuple[Kind, ...], str]] = {
    ".pdf": ((Kind.PDF,), "a PDF document"),
    ".docx": ((Kind.DOCX,), "a Word document"),
    ".txt": (TEXTUAL, "text"),
    ".md": (TEXTUAL, "text"),
    ".markdown": (TEXTUAL, "text"),
    ".html": (TEXTUAL, "text or HTML"),
    ".htm": (TEXTUAL, "text or HTML"),
}


def sniff(data: bytes) -> Sniffed:
    """The kind of ``data`` judged by its bytes alone (magic numbers, then text heuristics)."""
    if data.startswith(b"%PDF-"):
        return Sniffed(Kind.PDF, "a PDF document")
    if data.startswith(_ZIP_LOCAL) or data.startswith(_ZIP_END):
        if _DOCX_MAIN.encode() in _central_directory(data):
            return Sniffed(Kind.DOCX, "a Word document")
        return Sniffed(Kind.ZIP, "a ZIP archive")
    for magic, kind, description in _SIGNATURES:
        if data.startswith(magic):
            return Sniffed(kind, description)
    if data.startswith(b"MZ") and b"\x00" in data[:64]:  # the DOS header has zero fields
        return Sniffed(Kind.EXECUTABLE, "a Windows executable")
    if not _looks_textual(data):
        return Sniffed(Kind.BINARY, "binary data")
    if _looks_html(data):
        return Sniffed(Kind.HTML, "an HTML page")
    return Sniffed(Kind.TEXT, "text")


def check_content(suffix: str, data: bytes, limits: ArchiveLimits) -> None:
    """Refuse ``data`` unless its content is what the extension ``suffix`` promises.

    Raises UnsupportedFileError naming both when they disagree, and DocumentError when a
    Word file breaks ``limits``. Empty data passes: the loader reports it as empty.
    """
    if not data:
        return
    found = sniff(data)
    rule = EXPECTED.get(suffix.lower())
    if rule is None:  # a loader we have no rule for: refuse programs, trust the parser
        if found.kind is Kind.EXECUTABLE:
            raise UnsupportedFileError(_mismatch(suffix, found.description, "a document"))
        return
    kinds, expected = rule
    if Kind.DOCX in kinds and found.kind in (Kind.DOCX, Kind.ZIP):
        check_archive(data, limits)
        if not is_docx(data):
            raise UnsupportedFileError(_mismatch(suffix, "a ZIP archive", expected))
        return
    if found.kind not in kinds:
        raise UnsupportedFileError(_mismatch(suffix, found.description, expected))


def check_archive(data: bytes, limits: ArchiveLimits) -> None:
    """Refuse a ZIP whose central directory promises too many members or too much data.

    Sizes come from the central directory; nothing is inflated. The standard library's
    reader never returns more bytes than a member declares, so a directory that lies about
    sizes yields a short, failing read rather than a larger one.
    """
    members = _count_members(data)
    if members > limits.max_members:
        raise DocumentError(
            f"archive has {members} members, over the limit of {limits.max_members} "
            "(config key ingest.max_archive_members)"
        )
    infos = _infolist(data)
    total = sum(info.file_size for info in infos)
    if total > limits.max_total_bytes:
        raise DocumentError(
            f"archive expands to {total / MB:.1f} MB, over the limit of "
            f"{limits.max_total_bytes / MB:.1f} MB (config key ingest.max_archive_mb)"
        )
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_GRACE_BYTES and ratio > limits.max_ratio:
            raise DocumentError(
                f"archive member {info.filename!r} expands {ratio:.0f} times, over the limit "
                f"of {limits.max_ratio:.0f} (config key ingest.max_archive_ratio); "
                "this looks like a zip bomb"
            )


def is_docx(data: bytes) -> bool:
    """Whether a ZIP (already checked by ``check_archive``) is a Word package."""
    with _open_zip(data) as archive:
        names = set(archive.namelist())
        if _DOCX_MAIN in names:
            return True
        # The main part may live elsewhere; its content type then names it.
        if "[Content_Types].xml" not in names:
            return False
        try:
            return _DOCX_CONTENT_TYPE in archive.read("[Content_Types].xml")
        except (zipfile.BadZipFile, ValueError, EOFError, OSError, zlib.error) as exc:
            raise DocumentError(f"corrupt ZIP archive: {exc}") from exc


def _mismatch(suffix: str, found: str, expected: str) -> str:
    """The message of a content that disagrees with its extension."""
    shown = suffix or "(none)"
    return f"content does not match the extension '{shown}': the file is {found}, not {expected}"


def _looks_textual(data: bytes) -> bool:
    """Text: a Unicode BOM, or no NUL bytes and few control characters in a sample."""
    if data.startswith(_TEXT_BOMS):
        return True
    if b"\x00" in data:
        return _looks_utf16(data[:_SAMPLE])
    sample = data[:_SAMPLE]
    controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    return controls <= _MAX_CONTROL_RATIO * len(sample)


def _looks_utf16(sample: bytes) -> bool:
    """UTF-16 without a BOM: mostly-ASCII text has its NULs on one byte parity only."""
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    pairs = len(sample) // 2
    return pairs > 0 and min(even, odd) == 0 and max(even, odd) >= pairs // 4


def _looks_html(data: bytes) -> bool:
    """Whether the text starts, after whitespace, with one of the HTML sniffing patterns."""
    head = data[:1024].lstrip(b"\xef\xbb\xbf").lstrip().lower()
    return any(
        head.startswith(tag) and head[len(tag) : len(tag) + 1] in (b" ", b">", b"\t", b"\n")
        for tag in _HTML_TAGS
    )


def _central_directory(data: bytes) -> bytes:
    """The raw central directory of a ZIP (up to its end record); empty when there is none."""
    end = data.rfind(_ZIP_END, max(0, len(data) - _ZIP_END_SIZE - 0xFFFF))
    if end < 0 or end + _ZIP_END_SIZE > len(data):
        return b""
    (size,) = struct.unpack_from("<I", data, end + 12)
    # A ZIP64 directory records 0xFFFFFFFF here: then the whole file is an upper bound.
    return data[max(0, end - size) : end]


def _count_members(data: bytes) -> int:
    """Members of a ZIP, counted in the raw directory bytes before any parsing.

    Counting signatures cannot undercount, so a directory of a million entries is refused
    without building a million records, whatever count its end record claims.
    """
    directory = _central_directory(data)
    if not directory:
        raise DocumentError("corrupt ZIP archive: no central directory")
    return directory.count(_ZIP_CENTRAL)


def _infolist(data: bytes) -> list[zipfile.ZipInfo]:
    """The members a ZIP's central directory describes."""
    with _open_zip(data) as archive:
        return archive.infolist()


def _open_zip(data: bytes) -> zipfile.ZipFile:
    """Open a ZIP held in memory; a damaged one raises DocumentError."""
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as exc:
        raise DocumentError(f"corrupt ZIP archive: {exc}") from exc
