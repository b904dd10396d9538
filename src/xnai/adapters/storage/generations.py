"""Index generations on disk: ``index/gen-000007/``, the ``CURRENT`` pointer, the manifest.

With a key ring the manifest (it holds document titles) is encrypted with the user_data key.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from xnai.adapters.storage.fsutil import (
    TMP_MARK,
    atomic_write_bytes,
    ensure_dir,
    fsync_dir,
    fsync_file,
    restrict_tree,
)
from xnai.adapters.storage.generation_dirs import GenerationDirs
from xnai.domain.errors import IntegrityError
from xnai.domain.keys import USER_DATA
from xnai.domain.layout import DataLayout
from xnai.domain.ports import KeyRing

# Every Fernet token starts so (its version byte, base64-encoded); no plain index file does.
_TOKEN_START = b"gA"


class FileIndexStore(GenerationDirs):
    """Keeps generations under ``<data>/index`` and the manifest under ``<data>/knowledge``."""

    def __init__(self, data_dir: Path, keyring: KeyRing | None = None) -> None:
        self._keyring = keyring
        layout = DataLayout(data_dir)
        self.root = ensure_dir(layout.index)
        self.knowledge = ensure_dir(layout.knowledge)
        self.pointer = layout.index_pointer
        self.manifest_path = layout.manifest
        self._lock_path = self.root / ".writer.lock"

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive writer lock across processes (released by the kernel if we die)."""
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    @contextmanager
    def try_lock(self) -> Iterator[bool]:
        """The writer lock without waiting: yields False when another process holds it."""
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def read_pointer(self) -> int | None:
        """Generation named by ``CURRENT``."""
        try:
            return int(self.pointer.read_text(encoding="ascii").strip())
        except (FileNotFoundError, ValueError):
            return None

    def pointer_stamp(self) -> tuple[int, int] | None:
        """(inode, mtime_ns) of ``CURRENT``: a rename always changes the inode."""
        try:
            st = self.pointer.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns)

    def publish(self, staged: Path, generation: int) -> Path:
        """fsync every staged file, rename the directory into place, fsync the parent."""
        restrict_tree(staged)
        for path in sorted(staged.rglob("*")):
            if path.is_file():
                fsync_file(path)
            else:
                fsync_dir(path)
        fsync_dir(staged)
        final = self.generation_dir(generation)
        if final.exists():  # left by a run that died before committing: never referenced
            shutil.rmtree(final)
        os.replace(staged, final)
        fsync_dir(self.root)
        return final

    def _content(self, data: bytes) -> bytes:
        """What a generation file holds: decrypted when it is a token."""
        if self._keyring is None or not data.startswith(_TOKEN_START):
            return data
        return self._keyring.decrypt(USER_DATA, data)

    def set_pointer(self, generation: int) -> None:
        """Atomically rewrite ``CURRENT``."""
        atomic_write_bytes(self.pointer, f"{generation}\n".encode("ascii"))

    def read_manifest(self) -> dict[str, Any] | None:
        """The manifest, or None when absent or unreadable; IntegrityError when tampered."""
        try:
            raw = self.manifest_path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            data = json.loads(self._open(raw))
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Atomically replace the manifest."""
        text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        data = text.encode("utf-8")
        if self._keyring is not None:
            data = self._keyring.encrypt(USER_DATA, data)
        atomic_write_bytes(self.manifest_path, data)

    def _open(self, raw: bytes) -> bytes:
        if self._keyring is None:
            return raw
        try:
            return self._keyring.decrypt(USER_DATA, raw)
        except IntegrityError as exc:
            raise IntegrityError(
                f"{self.manifest_path}: {exc}. The manifest is derived from the database: "
                "delete the file and the next command rewrites it"
            ) from None

    def cleanup(self, keep: set[int]) -> list[Path]:
        """Remove temp leftovers anywhere we write and generations not kept."""
        gone: list[Path] = []
        for folder in (self.root, self.knowledge):
            for path in folder.iterdir():
                if path.name.startswith(TMP_MARK):
                    _remove(path)
                    gone.append(path)
        for generation in self.generations():
            if generation not in keep:
                path = self.generation_dir(generation)
                _remove(path)
                gone.append(path)
        if gone:
            fsync_dir(self.root)
        return gone


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
