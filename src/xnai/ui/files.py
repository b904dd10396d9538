"""Files dropped into the chat: their names and bytes, read within the size limit."""

from __future__ import annotations

from pathlib import Path

from xnai.domain.errors import XnaiError
from xnai.services.sources import safe_name


def upload_name(filename: str) -> str:
    """The harmless base name of a dropped file (as for HTTP uploads); ``upload`` when
    nothing is left of it."""
    try:
        return safe_name(filename)
    except XnaiError:
        return "upload"


def read_upload(path: Path, max_bytes: int) -> bytes:
    """The bytes of a dropped file, one past ``max_bytes`` at most: enough for the size
    check to refuse it, no more in memory."""
    with path.open("rb") as f:
        return f.read(max_bytes + 1)
