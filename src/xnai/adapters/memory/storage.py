"""In-memory storage adapters: kept originals and named state values."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

from xnai.adapters.memory.keys import MemoryKeyRing
from xnai.domain.errors import IntegrityError
from xnai.domain.keys import USER_DATA
from xnai.domain.ports import KeyRing


class MemoryOriginals:
    """The ``OriginalsStore`` reference: encrypted tokens keyed by a path under ``folder``
    that names no file on disk."""

    def __init__(self, keyring: KeyRing | None = None, folder: Path = Path("originals")) -> None:
        self.keyring = keyring or MemoryKeyRing("originals")
        self.folder = folder
        self._tokens: dict[Path, bytes] = {}
        self._lock = threading.Lock()

    def keep(self, name: str, data: bytes) -> Path:
        """Store ``data`` as ``<sha256><suffix>`` unless it is already there; its path."""
        digest = hashlib.sha256(data).hexdigest()
        path = self.folder / f"{digest}{Path(name).suffix.lower()}"
        with self._lock:
            if path not in self._tokens:
                self._tokens[path] = self.keyring.encrypt(USER_DATA, data)
        return path

    def read(self, path: Path) -> bytes:
        """The bytes kept at ``path``; FileNotFoundError when none, IntegrityError when
        tampered with."""
        token = self.token(path)
        if token is None:
            raise FileNotFoundError(str(path))
        try:
            return self.keyring.decrypt(USER_DATA, token)
        except IntegrityError as exc:
            raise IntegrityError(f"{path}: {exc}") from None

    def forget(self, sha256: str) -> int:
        """Remove every kept value of ``sha256``; how many were removed."""
        with self._lock:
            gone = [p for p in self._tokens if p.name.startswith(sha256)]
            for path in gone:
                del self._tokens[path]
        return len(gone)

    def token(self, path: Path) -> bytes | None:
        """The stored ciphertext at ``path``."""
        return self._tokens.get(path)

    def replace_token(self, path: Path, token: bytes) -> None:
        """Overwrite the ciphertext at ``path`` (how tests alter data at rest)."""
        with self._lock:
            self._tokens[path] = token


class MemoryStateStore:
    """The ``StateStore`` reference: values kept as JSON text, so each read is a fresh copy
    and a value JSON cannot hold is refused like the file adapter refuses it."""

    def __init__(self) -> None:
        self._texts: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        """The value stored under ``key``, or None."""
        text = self._texts.get(key)
        return None if text is None else json.loads(text)

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` (JSON-serialisable) under ``key``; TypeError when it is not."""
        text = json.dumps(value)
        with self._lock:
            self._texts[key] = text
