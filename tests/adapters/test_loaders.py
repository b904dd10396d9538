"""Loaders on real files written to tmp_path: text, HTML, PDF, DOCX and the registry."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from tests.fixtures_docs import (
    encrypted_pdf,
    make_docx,
    minimal_pdf,
    noisy_html,
    random_bytes,
)
from xnai.adapters.loaders import (
    DocxLoader,
    HtmlLoader,
    PdfLoader,
    TextLoader,
    default_loaders,
    loader_for,
)
from xnai.domain.errors import DocumentError, UnsupportedFileError
from xnai.domain.models import LoadedDocument
from xnai.domain.ports import Loader

DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
BINARY = "file looks binary, not text"


def load(loader: Loader, path: Path, data: bytes) -> LoadedDocument:
    """Write ``data`` to ``path`` and load it back from disk, as ingestion does."""
    path.write_bytes(data)
    return loader.load(path, path.read_bytes())


# --- text -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "encoding", "expected_encoding"),
    [
        ("café naïve résumé", "latin-1", "cp1252"),
        ("Les “guillemets” coûtent 5 € — déjà vu.", "cp1252", "cp1252"),
        ("日本語", "shift_jis", "cp932"),
        ("日本語のテキストです。", "shift_jis", "cp932"),
        ("Plain ASCII stays UTF-8.", "utf-8", "utf-8"),
        ("Ünïcödé ✓ in UTF-8", "utf-8", "utf-8"),
    ],
)
def test_text_decodes_legacy_encodings(
    tmp_path: Path, text: str, encoding: str, expected_encoding: str
) -> None:
    doc = load(TextLoader(), tmp_path / "note.txt", text.encode(encoding))
    assert doc.text == text
    assert doc.encoding == expected_encoding


def test_text_utf16_with_bom_is_decoded_and_newlines_normalised(tmp_path: Path) -> None:
    data = "# Notes\r\nŁódź 日本語\rend".encode("utf-16")
    doc = load(TextLoader(), tmp_path / "notes.md", data)
    assert doc.text == "# Notes\nŁódź 日本語\nend"
    assert doc.encoding == "utf-16-le"
    assert doc.title == "Notes"
    assert doc.mime == "text/markdown"


def test_text_utf16_big_endian_with_bom(tmp_path: Path) -> None:
    doc = load(TextLoader(), tmp_path / "be.txt", "\ufeffhello wörld".encode("utf-16-be"))
    assert (doc.text, doc.encoding) == ("hello wörld", "utf-16-be")


def test_text_utf16_without_bom_is_not_mistaken_for_binary(tmp_path: Path) -> None:
    doc = load(TextLoader(), tmp_path / "le.txt", "plain ascii in utf-16".encode("utf-16-le"))
    assert (doc.text, doc.encoding) == ("plain ascii in utf-16", "utf-16-le")


def test_text_utf8_bom_is_stripped(tmp_path: Path) -> None:
    doc = load(TextLoader(), tmp_path / "bom.txt", "\ufeffhello".encode())
    assert (doc.text, doc.encoding) == ("hello", "utf-8-sig")


def test_text_title_is_first_level_one_heading_else_stem(tmp_path: Path) -> None:
    loader = TextLoader()
    md = load(loader, tmp_path / "readme.md", b"intro\n## Sub\n# Main Title ##\ntext\n# Later\n")
    txt = load(loader, tmp_path / "plain-notes.txt", b"no heading here\n")
    assert (md.title, md.mime, md.loader, md.loader_version) == (
        "Main Title",
        "text/markdown",
        "text",
        "1",
    )
    assert (txt.title, txt.mime) == ("plain-notes", "text/plain")


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n" + random_bytes(4000),
        random_bytes(5000, seed=7),
        b"hello\x00world, mostly text with a NUL byte",
        bytes(range(1, 32)) * 40,
        b"\x7fELF\x02\x01\x01" + bytes(500),
    ],
    ids=["png", "random", "nul-in-ascii", "control-chars", "elf"],
)
def test_binary_data_with_txt_name_is_rejected(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(DocumentError) as excinfo:
        load(TextLoader(), tmp_path / "fake.txt", data)
    assert str(excinfo.value) == BINARY


def test_whitespace_only_text_has_no_text(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="^no text found$"):
        load(TextLoader(), tmp_path / "blank.txt", b" \r\n\t \n")


@pytest.mark.parametrize("loader", default_loaders(), ids=lambda loader: loader.name)
def test_every_loader_rejects_an_empty_file(tmp_path: Path, loader: Loader) -> None:
    with pytest.raises(DocumentError, match="^empty file$"):
        load(loader, tmp_path / f"empty{loader.suffixes[0]}", b"")


@pytest.mark.parametrize("loader", default_loaders(), ids=lambda loader: loader.name)
@pytest.mark.parametrize("seed", range(5))
def test_loaders_never_crash_on_garbage(tmp_path: Path, loader: Loader, seed: int) -> None:
    data = random_bytes(64 + 300 * seed, seed=seed)
    try:
        doc = load(loader, tmp_path / f"garbage{loader.suffixes[0]}", data)
    except DocumentError:
        return
    assert doc.text.strip()


# --- html -------------------------------------------------------------------------------


def test_html_keeps_main_text_and_drops_noise(tmp_path: Path) -> None:
    page = noisy_html("Tomatoes need full sun and regular watering to produce a good harvest.")
    doc = load(HtmlLoader(), tmp_path / "garden.html", page.encode())
    assert doc.text == (
        "# Growing tomatoes\n\n"
        "Tomatoes need full sun and regular watering to produce a good harvest.\n\n"
        "## Soil\n\n"
        "Use rich, well-drained soil with plenty of compost mixed in before planting."
    )
    for noise in ("SCRIPT_NOISE", "SCRIPT2_NOISE", "STYLE_NOISE", "NAV_NOISE", "FOOTER_NOISE"):
        assert noise not in doc.text
    assert (doc.title, doc.mime, doc.encoding) == ("Garden Notes", "text/html", "utf-8")


def test_html_fragment_falls_back_to_the_stdlib_parser(tmp_path: Path) -> None:
    # trafilatura returns nothing for a bare fragment; the tag-stripping parser still reads it.
    data = b"<p>Hi there &amp; welcome</p><script>NOISE()</script><p>Second   line</p>"
    doc = load(HtmlLoader(), tmp_path / "fragment.htm", data)
    assert doc.text == "Hi there & welcome\n\nSecond line"
    assert doc.title == "fragment"


def test_html_uses_the_declared_charset(tmp_path: Path) -> None:
    page = (
        '<html><head><meta charset="windows-1252"><title>Café</title></head>'
        "<body><article><p>Un café crème coûte 3 € à Paris, dit-on.</p></article></body></html>"
    )
    doc = load(HtmlLoader(), tmp_path / "cafe.html", page.encode("cp1252"))
    assert doc.text == "Un café crème coûte 3 € à Paris, dit-on."
    assert (doc.title, doc.encoding) == ("Café", "windows-1252")


def test_html_with_only_scripts_has_no_text(tmp_path: Path) -> None:
    data = b"<html><head><script>var x = 1;</script></head><body>  </body></html>"
    with pytest.raises(DocumentError, match="^no text found$"):
        load(HtmlLoader(), tmp_path / "empty.html", data)


# --- pdf --------------------------------------------------------------------------------


def test_pdf_text_is_extracted(tmp_path: Path) -> None:
    doc = load(PdfLoader(), tmp_path / "hello.pdf", minimal_pdf("Hello PDF world"))
    assert doc == LoadedDocument(
        text="Hello PDF world",
        title="hello",
        mime="application/pdf",
        loader="pdf",
        loader_version="1",
    )


def test_pdf_pages_are_joined_by_blank_lines_and_title_read_from_metadata(tmp_path: Path) -> None:
    data = minimal_pdf("First page (intro)", "Second page", title="Annual Report")
    doc = load(PdfLoader(), tmp_path / "report.pdf", data)
    assert doc.text == "First page (intro)\n\nSecond page"
    assert doc.title == "Annual Report"


@pytest.mark.parametrize(
    "data",
    [
        minimal_pdf("Hello PDF world")[:300],
        minimal_pdf("Hello PDF world")[:-60],
        random_bytes(2000),
        b"%PDF-1.4\n" + random_bytes(2000, seed=3),
    ],
    ids=["truncated-early", "truncated-xref", "random", "header-then-random"],
)
def test_corrupt_pdf_is_a_document_error(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(DocumentError) as excinfo:
        load(PdfLoader(), tmp_path / "broken.pdf", data)
    assert str(excinfo.value).startswith("corrupt PDF: ")


def test_pdf_without_text_layer(tmp_path: Path) -> None:
    with pytest.raises(DocumentError) as excinfo:
        load(PdfLoader(), tmp_path / "scan.pdf", minimal_pdf(""))
    assert str(excinfo.value) == "PDF has no extractable text (scanned image?)"


def test_pdf_encrypted_with_empty_password_is_read(tmp_path: Path) -> None:
    doc = load(PdfLoader(), tmp_path / "open.pdf", encrypted_pdf("Readable secret", ""))
    assert doc.text == "Readable secret"


def test_pdf_encrypted_with_a_password_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DocumentError) as excinfo:
        load(PdfLoader(), tmp_path / "locked.pdf", encrypted_pdf("Hidden", "s3cret"))
    assert str(excinfo.value) == "PDF is encrypted with a password"


# --- docx -------------------------------------------------------------------------------


def test_docx_round_trip_with_heading_and_table(tmp_path: Path) -> None:
    path = make_docx(
        tmp_path / "guide.docx",
        heading="Install",
        paragraphs=("Run the installer.", "Then restart."),
        table=[("OS", "Command"), ("Linux", "apt install xnai")],
        title="Setup Guide",
    )
    doc = DocxLoader().load(path, path.read_bytes())
    assert doc.text == (
        "# Install\n\nRun the installer.\n\nThen restart.\n\nOS | Command\nLinux | apt install xnai"
    )
    assert (doc.title, doc.mime, doc.loader) == ("Setup Guide", DOCX_MIME, "docx")


def test_docx_title_defaults_to_stem(tmp_path: Path) -> None:
    path = make_docx(tmp_path / "memo.docx", heading=None, paragraphs=("Just text.",))
    doc = DocxLoader().load(path, path.read_bytes())
    assert (doc.text, doc.title) == ("Just text.", "memo")


def test_docx_without_text(tmp_path: Path) -> None:
    path = make_docx(tmp_path / "blank.docx", heading=None, paragraphs=("  ",))
    with pytest.raises(DocumentError, match="^no text found$"):
        DocxLoader().load(path, path.read_bytes())


def test_corrupt_docx_is_a_document_error(tmp_path: Path) -> None:
    with pytest.raises(DocumentError) as excinfo:
        load(DocxLoader(), tmp_path / "broken.docx", b"this is not a zip file")
    assert str(excinfo.value) == "corrupt DOCX: File is not a zip file"


def test_zip_that_is_not_a_word_file_is_a_document_error(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hi")
    with pytest.raises(DocumentError) as excinfo:
        load(DocxLoader(), tmp_path / "other.docx", buffer.getvalue())
    assert str(excinfo.value).startswith("corrupt DOCX: ")


# --- registry ---------------------------------------------------------------------------


def test_default_loaders_implement_the_port() -> None:
    loaders = default_loaders()
    assert [loader.name for loader in loaders] == ["text", "html", "pdf", "docx"]
    assert all(isinstance(loader, Loader) and loader.version == "1" for loader in loaders)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.txt", "text"),
        ("README.MD", "text"),
        ("notes.markdown", "text"),
        ("page.htm", "html"),
        ("page.HTML", "html"),
        ("paper.pdf", "pdf"),
        ("letter.docx", "docx"),
    ],
)
def test_loader_for_matches_suffix_case_insensitively(name: str, expected: str) -> None:
    assert loader_for(Path(name), default_loaders()).name == expected


def test_unsupported_suffix() -> None:
    with pytest.raises(UnsupportedFileError) as excinfo:
        loader_for(Path("data.xyz"), default_loaders())
    assert str(excinfo.value) == (
        "unsupported file type '.xyz' (supported: .txt, .md, .markdown, .html, .htm, .pdf, .docx)"
    )


def test_file_without_suffix_is_unsupported() -> None:
    with pytest.raises(UnsupportedFileError, match=r"^unsupported file type 'Makefile' \(no ext"):
        loader_for(Path("Makefile"), default_loaders())
