"""An ``IndexStore`` whose pointer, manifest and writer lock live in memory.

Index files still need a directory (the indexes save and load files): generations are
plain directories under ``root``, published by a rename without fsync.
"""

from __future__ import annotations

import copy
import itertools
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from xnai.adapters.storage.fsutil import TMP_MARK
from xnai.adapters.storage.generation_dirs import GenerationDirs


class MemoryIndexStore(GenerationDirs):
    """Generations under ``root`` (a new temporary directory when omitted)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="xnai-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self._writer = threading.Lock()
        self._pointer: int | None = None
        self._stamp: tuple[int, int] | None = None
        self._changes = itertools.count(1)
        self._manifest: dict[str, Any] | None = None

    @contextmanager
    def lock(self) -> Iterator[None]:
        """The writer lock (one writer per store)."""
        with self._writer:
            yield

    @contextmanager
    def try_lock(self) -> Iterator[bool]:
        """The writer lock without waiting: yields False when it is held."""
        acquired = self._writer.acquire(blocking=False)
        try:
            yield acquired
        finally:
            if acquired:
                self._writer.release()

    def read_pointer(self) -> int | None:
        """The current generation, or None before the first ``set_pointer``."""
        return self._pointer

    def pointer_stamp(self) -> tuple[int, int] | None:
        """Changes with every ``set_pointer``."""
        return self._stamp

    def publish(self, staged: Path, generation: int) -> Path:
        """Rename a staged directory into place (replacing an unreferenced leftover)."""
        final = self.generation_dir(generation)
        if final.exists():
            shutil.rmtree(final)
        os.replace(staged, final)
        return final

    def set_pointer(self, generation: int) -> None:
        """Point at ``generation``."""
        self._pointer = generation
        self._stamp = (generation, next(self._changes))

    def read_manifest(self) -> dict[str, Any] | None:
        """A copy of the manifest, or None before the first write."""
        return copy.deepcopy(self._manifest)

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Replace the manifest with a copy of ``manifest``."""
        self._manifest = copy.deepcopy(manifest)

    def cleanup(self, keep: set[int]) -> list[Path]:
        """Remove staged leftovers and generations not kept."""
        gone = [p for p in self.root.iterdir() if p.name.startswith(TMP_MARK)]
        gone += [self.generation_dir(g) for g in self.generations() if g not in keep]
        for path in gone:
            shutil.rmtree(path, ignore_errors=True)
        return gone
