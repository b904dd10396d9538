"""Plain-text and Markdown loader, plus the byte decoding shared by text formats."""

from __future__ import annotations

import codecs
import re
import unicodedata
from pathlib import Path

from charset_normalizer import CharsetMatch, from_bytes

from xnai.domain.errors import DocumentError
from xnai.domain.models import LoadedDocument

BINARY_MESSAGE = "file looks binary, not text"

# The UTF-32-LE BOM starts with the UTF-16-LE one, so UTF-32 is tried first.
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Control characters other than tab/newline/vertical tab/form feed/carriage return, and U+FFFD.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f\ufffd]")
_MAX_CONTROL_RATIO = 0.05
# Short samples are ambiguous: tied guesses are ranked on a sample by rare characters (astral,
# private-use, unassigned, half-width katakana: typical of a wrong guess), then by this order.
_TIE_SAMPLE = 4096
_PREFERRED = (
    "utf_8",
    "cp1252",
    "latin_1",
    "cp932",
    "shift_jis",
    "euc_jp",
    "gb18030",
    "big5",
    "cp1251",
)
_TITLE = re.compile(r"^ {0,3}#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$", re.M)
_MIMES = {".md": "text/markdown", ".markdown": "text/markdown"}


def require_data(data: bytes) -> None:
    """Reject a 0-byte file."""
    if not data:
        raise DocumentError("empty file")


def require_text(text: str) -> str:
    """Reject extracted text that is empty or whitespace only; return it unchanged."""
    if not text.strip():
        raise DocumentError("no text found")
    return text


def normalise_newlines(text: str) -> str:
    """Turn CRLF and lone CR line endings into LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def decode_bytes(data: bytes, declared: str | None = None) -> tuple[str, str]:
    """Decode ``data`` to text and name the encoding; DocumentError when it looks binary."""
    text, encoding = _decode(data, declared)
    if len(_CONTROL.findall(text)) > _MAX_CONTROL_RATIO * len(text):
        raise DocumentError(BINARY_MESSAGE)
    return text, encoding


def _decode(data: bytes, declared: str | None) -> tuple[str, str]:
    """Pick the encoding: BOM, then UTF-8, then the declared charset, then detection."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, errors="replace"), encoding
    if b"\x00" in data:
        return _decode_utf16_without_bom(data)
    for candidate in ("utf-8", declared):
        if candidate:
            try:
                return data.decode(candidate), candidate
            except (UnicodeDecodeError, LookupError):
                continue
    return _detect(data)


def _decode_utf16_without_bom(data: bytes) -> tuple[str, str]:
    """Accept NUL bytes only when they sit on one byte parity, as in UTF-16 mostly-ASCII text."""
    even, odd = data[0::2].count(0), data[1::2].count(0)
    pairs = len(data) // 2
    if len(data) % 2 == 0 and pairs:
        for zeros, other, encoding in ((odd, even, "utf-16-le"), (even, odd, "utf-16-be")):
            if other == 0 and zeros >= pairs // 4:
                try:
                    return data.decode(encoding), encoding
                except UnicodeDecodeError:
                    break
    raise DocumentError(BINARY_MESSAGE)


def _detect(data: bytes) -> tuple[str, str]:
    """Best charset-normalizer guess, ties broken towards plausible, common encodings."""
    matches = list(from_bytes(data))
    if not matches:
        raise DocumentError(BINARY_MESSAGE)
    quality = min(_quality(match) for match in matches)
    tied = [match for match in matches if _quality(match) == quality]
    best = min(tied, key=_tie_rank)
    return str(best), best.encoding


def _quality(match: CharsetMatch) -> tuple[float, float]:
    """Lower is better: less chaos, then more coherence."""
    return (round(match.chaos, 3), -round(match.coherence, 3))


def _tie_rank(match: CharsetMatch) -> tuple[int, int]:
    """Lower is better: fewer rare characters in a sample, then a preferred encoding."""
    sample = str(match)[:_TIE_SAMPLE]
    rare = sum(
        1
        for char in sample
        if ord(char) > 0xFFFF
        or "\uff61" <= char <= "\uffdc"
        or unicodedata.category(char) in ("Co", "Cn")
    )
    preference = _PREFERRED.index(match.encoding) if match.encoding in _PREFERRED else 99
    return (rare, preference)


def markdown_title(text: str) -> str | None:
    """Text of the first level-1 ``# heading``, if any."""
    match = _TITLE.search(text)
    return match.group(1).strip() if match else None


class TextLoader:
    """Loads .txt and Markdown files, detecting their encoding."""

    name = "text"
    version = "1"
    suffixes: tuple[str, ...] = (".txt", ".md", ".markdown")

    def load(self, path: Path, data: bytes) -> LoadedDocument:
        """Decode the file and take its title from the first heading or the file name."""
        require_data(data)
        decoded, encoding = decode_bytes(data)
        text = require_text(normalise_newlines(decoded))
        return LoadedDocument(
            text=text,
            title=markdown_title(text) or path.stem,
            mime=_MIMES.get(path.suffix.lower(), "text/plain"),
            loader=self.name,
            loader_version=self.version,
            encoding=encoding,
        )
