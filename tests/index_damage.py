"""Ways index files get damaged, shared by the service, API and command-line tests."""

from __future__ import annotations

import os
from pathlib import Path


def overwrite_4k(path: Path) -> None:
    """Overwrite 4 KiB in the middle of ``path`` with random bytes (all of a smaller file)."""
    data = bytearray(path.read_bytes())
    size = min(4096, len(data))
    start = (len(data) - size) // 2
    data[start : start + size] = os.urandom(size)
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    """Cut ``path`` to half its length, as a full disk or an interrupted copy does."""
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def generation_dir(data_dir: Path) -> Path:
    """The folder of the committed generation, named by ``index/CURRENT``."""
    generation = int((data_dir / "index" / "CURRENT").read_text().strip())
    return data_dir / "index" / f"gen-{generation:06d}"
