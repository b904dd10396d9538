"""Files dropped into the chat: their names and bytes, read within the size limit."""

from __future__ import annotations

import unicodedata
from pathlib import Path, PurePath

# Control, format (bidi overrides, zero-width), surrogate, private-use and unassigned
# characters, and line or paragraph separators: invisible or misleading in a name.
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
MAX_NAME_BYTES = 160


def upload_name(filename: str) -> str:
    """The base name of a dropped file without hidden characters, at most 160 bytes
    (keeping its extension); ``upload`` when nothing is left."""
    text = unicodedata.normalize("NFKC", filename)
    text = "".join(ch for ch in text if unicodedata.category(ch) not in _HIDDEN)
    name = PurePath(text.replace("\\", "/")).name.strip().rstrip(". ")
    if not name.strip("."):
        return "upload"
    if len(name.encode()) <= MAX_NAME_BYTES:
        return name
    suffix = PurePath(name).suffix if len(PurePath(name).suffix) <= 16 else ""
    stem = name[: len(name) - len(suffix)].encode()[: MAX_NAME_BYTES - len(suffix.encode())]
    return stem.decode(errors="ignore").rstrip(". ") + suffix


def read_upload(path: Path, max_bytes: int) -> bytes:
    """The bytes of a dropped file, one past ``max_bytes`` at most: enough for the size
    check to refuse it, no more in memory."""
    with path.open("rb") as f:
        return f.read(max_bytes + 1)
