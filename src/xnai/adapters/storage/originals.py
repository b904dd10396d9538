"""Uploaded files kept as received: content-addressed, owner-only, encrypted with user_data."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from xnai.adapters.storage.fsutil import atomic_write_bytes
from xnai.domain.errors import IntegrityError
from xnai.domain.keys import USER_DATA
from xnai.domain.ports import KeyRing


class FileOriginals:
    """The ``OriginalsStore`` port over one folder, written under the index writer lock."""

    def __init__(
        self, folder: Path, keyring: KeyRing, lock: Callable[[], AbstractContextManager[None]]
    ) -> None:
        self.folder = folder
        self.keyring = keyring
        # The writer lock: a key rotation running at the same time would otherwise miss a
        # file written under the key it retires.
        self._lock = lock

    def keep(self, name: str, data: bytes) -> Path:
        """Store ``data`` as ``<sha256><suffix>`` unless it is already there; its path."""
        digest = hashlib.sha256(data).hexdigest()
        path = self.folder / f"{digest}{Path(name).suffix.lower()}"
        with self._lock():
            if not path.exists():
                atomic_write_bytes(path, self.keyring.encrypt(USER_DATA, data))
        return path

    def read(self, path: Path) -> bytes:
        """The bytes of a file stored by ``keep``; IntegrityError when tampered with."""
        try:
            return self.keyring.decrypt(USER_DATA, path.read_bytes())
        except IntegrityError as exc:
            raise IntegrityError(f"{path}: {exc}") from None

    def forget(self, sha256: str) -> int:
        """Remove every stored file of ``sha256``; how many were removed."""
        gone = 0
        with self._lock():
            for path in self.folder.glob(f"{sha256}*"):
                path.unlink(missing_ok=True)
                gone += 1
        return gone
