"""Chunk texts by id, the part every lexical index shares: searches use a built form
that a change drops and the next search rebuilds."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Generic, TypeVar

BuiltT = TypeVar("BuiltT")


class LazyTextIndex(Generic[BuiltT]):
    """Texts kept in index order under a lock; ``_build`` makes what searches read."""

    def __init__(self, built: BuiltT | None = None) -> None:
        self._texts: dict[str, str] = {}  # insertion order is index order
        self._built: BuiltT | None = built
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._texts)

    def ids(self) -> list[str]:
        """Chunk ids in index order."""
        with self._lock:
            return list(self._texts)

    def add(self, ids: Sequence[str], texts: Sequence[str]) -> None:
        """Index texts under new chunk ids (rebuilt on the next search); ValueError on a
        duplicate id."""
        new_ids = list(ids)
        if len(new_ids) != len(texts):
            raise ValueError(f"{len(new_ids)} ids for {len(texts)} texts")
        if len(set(new_ids)) != len(new_ids):
            raise ValueError("duplicate chunk ids in one add")
        with self._lock:
            taken = [chunk_id for chunk_id in new_ids if chunk_id in self._texts]
            if taken:
                raise ValueError(f"chunk ids already indexed: {taken[:5]}")
            self._texts.update(zip(new_ids, texts, strict=True))
            self._built = None

    def remove(self, ids: set[str]) -> None:
        """Drop these chunk ids (unknown ids are ignored)."""
        with self._lock:
            doomed = [chunk_id for chunk_id in ids if chunk_id in self._texts]
            for chunk_id in doomed:
                del self._texts[chunk_id]
            if doomed:
                self._built = None

    def _current(self) -> BuiltT:
        """The built index, rebuilding it first if texts changed since the last build."""
        built = self._built
        if built is not None:
            return built
        with self._lock:
            return self._build_locked()

    def _build_locked(self) -> BuiltT:
        """Build the index from the texts unless it is current; hold the lock to call."""
        if self._built is None:
            self._built = self._build(self._texts)
        return self._built

    def _build(self, texts: dict[str, str]) -> BuiltT:
        """What searches read, built from ``texts`` in index order."""
        raise NotImplementedError
