"""``generation.json``: what a generation holds and the sha256 of every file's content.

The digest is taken over what a file holds, after decryption, so a key rotation that
re-encrypts the files leaves it valid; an encrypted file is also checked by its own HMAC.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xnai.domain.errors import IntegrityError

INFO_FILE = "generation.json"

Opener = Callable[[bytes], bytes]


def write_info(directory: Path, info: dict[str, Any], opener: Opener) -> Path:
    """Write ``info`` plus ``files`` (name -> sha256 of content) for every file there."""
    files = {
        path.name: _digest(path, opener)
        for path in sorted(directory.iterdir())
        if path.is_file() and path.name != INFO_FILE
    }
    path = directory / INFO_FILE
    path.write_text(json.dumps({**info, "files": files}, sort_keys=True), encoding="utf-8")
    return path


def read_info(directory: Path) -> dict[str, Any] | None:
    """The recorded info, or None when the file is missing or unreadable."""
    try:
        data = json.loads((directory / INFO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def check_info(directory: Path, opener: Opener) -> list[str]:
    """Each file whose content no longer has its recorded sha256, or is missing; empty when
    all match. Generations written before digests were recorded are not checked."""
    info = read_info(directory)
    if info is None:
        return [f"{directory / INFO_FILE} is missing or unreadable"]
    files = info.get("files")
    if not isinstance(files, dict):
        return []
    problems: list[str] = []
    for name, expected in sorted(files.items()):
        path = directory / name
        try:
            actual = _digest(path, opener)
        except FileNotFoundError:
            problems.append(f"{path} is missing")
            continue
        except IntegrityError as exc:
            problems.append(f"{path}: {exc}")
            continue
        if actual != expected:
            problems.append(f"{path} does not have the sha256 recorded when it was written")
    return problems


def _digest(path: Path, opener: Opener) -> str:
    return hashlib.sha256(opener(path.read_bytes())).hexdigest()
