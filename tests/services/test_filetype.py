"""Content sniffing, the extension rule and ZIP expansion limits, alone and in the ingest."""

from __future__ import annotations

import io
import struct
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures_docs import make_docx, minimal_pdf, random_bytes
from tests.memory_wiring import MemoryServices
from xnai.bootstrap import Container
from xnai.domain.errors import DocumentError, UnsupportedFileError
from xnai.services.filetype import (
    ArchiveLimits,
    Kind,
    check_archive,
    check_content,
    sniff,
)

LIMITS = ArchiveLimits()
ELF = b"\x7fELF\x02\x01\x01\x00" + bytes(8) + b"\x02\x00\x3e\x00" + random_bytes(2000)
PE = (
    b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00"
    + bytes(44)
    + b"\x80\x00\x00\x00This program cannot be run in DOS mode.\r\r\n$"
    + random_bytes(1000)
)
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + random_bytes(300)
PAGE = b"<!DOCTYPE html>\n<html><head><title>T</title></head><body><p>Hi</p></body></html>\n"


def docx_bytes(tmp_path: Path) -> bytes:
    return make_docx(tmp_path / "w.docx", paragraphs=["Valves are checked monthly."]).read_bytes()


def zip_of(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def declare_size(data: bytes, member: int, size: int) -> bytes:
    """``data`` with the central directory claiming ``size`` uncompressed bytes for a member."""
    out = bytearray(data)
    at = -1
    for _ in range(member + 1):
        at = out.index(b"PK\x01\x02", at + 1)
    struct.pack_into("<I", out, at + 24, size)
    return bytes(out)


# --- sniffing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "kind", "description"),
    [
        (minimal_pdf("x"), Kind.PDF, "a PDF document"),
        (ELF, Kind.EXECUTABLE, "an ELF executable"),
        (PE, Kind.EXECUTABLE, "a Windows executable"),
        (PNG, Kind.BINARY, "a PNG image"),
        (zip_of({"a.txt": b"hi"}), Kind.ZIP, "a ZIP archive"),
        (PAGE, Kind.HTML, "an HTML page"),
        (b"  <p>Hello</p>", Kind.HTML, "an HTML page"),
        (b"# Notes\n\nPlain markdown.\n", Kind.TEXT, "text"),
        (b"MZ is the name of a river.\n", Kind.TEXT, "text"),  # no DOS header behind it
        (b"<pre-release notes>\n", Kind.TEXT, "text"),  # a tag name must end at space or >
        ("caf\xe9".encode("latin-1"), Kind.TEXT, "text"),
        ("Grüße\n".encode("utf-16"), Kind.TEXT, "text"),
        ("plain words here\n".encode("utf-16-le"), Kind.TEXT, "text"),  # UTF-16 without BOM
        (random_bytes(4000), Kind.BINARY, "binary data"),
        (b"\x01\x02\x03\x04 mostly controls \x05\x06\x07\x08", Kind.BINARY, "binary data"),
    ],
)
def test_sniff_names_the_content(data: bytes, kind: Kind, description: str) -> None:
    found = sniff(data)
    assert (found.kind, found.description) == (kind, description)


def test_a_word_file_is_told_apart_from_other_zips(tmp_path: Path) -> None:
    assert sniff(docx_bytes(tmp_path)).kind is Kind.DOCX


# --- the extension must agree with the content -----------------------------------------


@pytest.mark.parametrize(
    ("suffix", "make"),
    [
        (".pdf", lambda p: minimal_pdf("Sales rose.")),
        (".PDF", lambda p: minimal_pdf("Upper-case extension.")),
        (".docx", docx_bytes),
        (".md", lambda p: b"# Title\n\nBody.\n"),
        (".md", lambda p: b'<p align="center">A README that opens with HTML</p>\n'),
        (".txt", lambda p: "Le café est très chaud.".encode("latin-1")),
        (".txt", lambda p: "Grüße aus Köln\n".encode("utf-16")),
        (".html", lambda p: PAGE),
        (".htm", lambda p: b"Just words in a page file.\n"),
        (".txt", lambda p: b""),  # the loader reports an empty file itself
    ],
)
def test_matching_content_passes(
    tmp_path: Path, suffix: str, make: Callable[[Path], bytes]
) -> None:
    check_content(suffix, make(tmp_path), LIMITS)


@pytest.mark.parametrize(
    ("suffix", "data", "message"),
    [
        (".pdf", ELF, "the file is an ELF executable, not a PDF document"),
        (".pdf", PE, "the file is a Windows executable, not a PDF document"),
        (".pdf", PAGE, "the file is an HTML page, not a PDF document"),
        (".txt", minimal_pdf("x"), "the file is a PDF document, not text"),
        (".md", PNG, "the file is a PNG image, not text"),
        (".txt", random_bytes(3000), "the file is binary data, not text"),
        (".html", ELF, "the file is an ELF executable, not text or HTML"),
        (".docx", ELF, "the file is an ELF executable, not a Word document"),
        (".docx", minimal_pdf("x"), "the file is a PDF document, not a Word document"),
        (".docx", zip_of({"hello.txt": b"hi"}), "the file is a ZIP archive, not a Word document"),
    ],
)
def test_mismatched_content_is_refused_with_the_reason(
    suffix: str, data: bytes, message: str
) -> None:
    with pytest.raises(UnsupportedFileError) as excinfo:
        check_content(suffix, data, LIMITS)
    assert str(excinfo.value) == f"content does not match the extension '{suffix}': {message}"


def test_a_word_file_posing_as_pdf_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFileError, match="is a Word document, not a PDF document"):
        check_content(".pdf", docx_bytes(tmp_path), LIMITS)


def test_a_word_package_with_a_renamed_main_part_is_accepted() -> None:
    content_types = (
        b'<Types><Override PartName="/word/main.xml" ContentType="application/'
        b'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
    )
    data = zip_of({"[Content_Types].xml": content_types, "word/main.xml": b"<w:document/>"})
    check_content(".docx", data, LIMITS)


def test_unknown_extensions_only_refuse_programs() -> None:
    check_content(".rst", b"Title\n=====\n", LIMITS)
    with pytest.raises(UnsupportedFileError, match="is an ELF executable, not a document"):
        check_content(".rst", ELF, LIMITS)


# --- archive expansion ------------------------------------------------------------------


def test_an_ordinary_word_file_is_within_the_limits(tmp_path: Path) -> None:
    check_archive(docx_bytes(tmp_path), LIMITS)


def test_a_deflate_bomb_is_refused_by_its_ratio() -> None:
    bomb = zip_of({"[Content_Types].xml": b"<Types/>", "word/document.xml": bytes(20 * 2**20)})
    assert len(bomb) < 100_000
    with pytest.raises(DocumentError, match=r"'word/document.xml' expands 10\d\d times"):
        check_content(".docx", bomb, LIMITS)


def test_a_bomb_is_judged_from_the_directory_without_inflating() -> None:
    # 4 GB declared per member; the stored bytes are short and would fail a real read.
    small = zip_of({"word/document.xml": b"<w:document/>", "word/a.bin": b"x" * 100})
    bomb = declare_size(declare_size(small, 0, 0xFFFFFFF0), 1, 0xFFFFFFF0)
    started = time.perf_counter()
    with pytest.raises(DocumentError) as excinfo:
        check_content(".docx", bomb, LIMITS)
    assert time.perf_counter() - started < 1.0
    assert str(excinfo.value) == (
        "archive expands to 8192.0 MB, over the limit of 100.0 MB "
        "(config key ingest.max_archive_mb)"
    )


def test_the_total_limit_is_configurable() -> None:
    data = zip_of({"word/document.xml": random_bytes(300_000)}, zipfile.ZIP_STORED)
    check_archive(data, LIMITS)
    with pytest.raises(DocumentError, match="expands to 0.3 MB, over the limit of 0.1 MB"):
        check_archive(data, ArchiveLimits(max_total_bytes=100_000))


def test_small_members_are_not_judged_by_ratio() -> None:
    # 500 KB of zeros is ~1000:1, but a member under 1 MB cannot expand far.
    check_archive(zip_of({"word/document.xml": bytes(500_000)}), LIMITS)


def test_too_many_members_are_refused_even_when_the_end_record_lies() -> None:
    data = bytearray(zip_of({f"word/media/{i}.xml": b"" for i in range(1001)}))
    end = data.rindex(b"PK\x05\x06")
    struct.pack_into("<HH", data, end + 8, 1, 1)  # claim a single entry
    with pytest.raises(DocumentError) as excinfo:
        check_archive(bytes(data), LIMITS)
    assert str(excinfo.value) == (
        "archive has 1001 members, over the limit of 1000 (config key ingest.max_archive_members)"
    )


@pytest.mark.parametrize(
    "data",
    [b"PK\x03\x04 not really a zip", b"PK\x03\x04" + random_bytes(500), b"PK\x05\x06" + bytes(18)],
)
def test_a_damaged_zip_is_a_document_error(data: bytes) -> None:
    with pytest.raises(DocumentError, match="corrupt ZIP archive"):
        check_content(".docx", data, LIMITS)


# --- in the ingest: files from disk get the same checks ---------------------------------


def test_files_from_disk_are_checked_before_parsing(
    services: MemoryServices, tmp_path: Path
) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "good.md").write_text("# Good\n\nThe pump runs at 1450 rpm.\n")
    (lib / "tool.pdf").write_bytes(ELF)
    (lib / "report.txt").write_bytes(minimal_pdf("Quarterly numbers."))
    (lib / "archive.docx").write_bytes(zip_of({"notes.txt": b"not a word file"}))
    (lib / "bomb.docx").write_bytes(
        zip_of({"[Content_Types].xml": b"<Types/>", "word/document.xml": bytes(20 * 2**20)})
    )
    report = services.ingestion.ingest_files(
        services.ingestion.document_files([lib]), user="tester"
    )
    failed = {Path(source).name: str(error) for source, error in report.failed}
    assert [Path(s).name for s in report.added] == ["good.md"]
    assert failed["tool.pdf"].endswith("the file is an ELF executable, not a PDF document")
    assert failed["report.txt"].endswith("the file is a PDF document, not text")
    assert failed["archive.docx"].endswith("the file is a ZIP archive, not a Word document")
    assert "looks like a zip bomb" in failed["bomb.docx"]


def test_configured_archive_limits_reach_the_ingest(
    make_container: Callable[..., Container], tmp_path: Path
) -> None:
    c = make_container(ingest={"max_archive_members": 5})
    path = tmp_path / "memo.docx"
    make_docx(path, paragraphs=["Lunch is at noon."])
    report = c.ingestion.ingest_files([path], user="tester")
    assert "over the limit of 5" in str(report.failed[0][1])
