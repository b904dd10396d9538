"""A small JSON file of named values (last run times of scheduled jobs), written atomically."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from xnai.adapters.storage.fsutil import atomic_write_bytes


class JsonStateFile:
    """Named JSON values in one owner-only file; a missing or unreadable file is empty."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        """The value stored under ``key``, or None."""
        return self._read().get(key)

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` (JSON-serialisable) under ``key``."""
        with self._lock:
            data = self._read()
            data[key] = value
            text = json.dumps(data, indent=2, sort_keys=True) + "\n"
            atomic_write_bytes(self.path, text.encode("utf-8"))

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}
