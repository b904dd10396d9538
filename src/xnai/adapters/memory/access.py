"""An in-memory ``CollectionStore``: the reference for tests and throwaway runs."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from xnai.domain.access import Collection
from xnai.domain.errors import ConflictError, NotFoundError


class MemoryCollectionStore:
    """Collections in a dict: the reference CollectionStore for tests and throwaway runs."""

    def __init__(self, collections: Iterable[Collection] = ()) -> None:
        self._items = {c.name: c for c in collections}
        self._lock = threading.Lock()

    def list(self) -> list[Collection]:
        """Every collection, by name."""
        with self._lock:
            return [self._items[name] for name in sorted(self._items)]

    def get(self, name: str) -> Collection | None:
        """A collection by name."""
        return self._items.get(name)

    def create(self, collection: Collection) -> None:
        """Add a collection; ConflictError when the name is taken."""
        with self._lock:
            if collection.name in self._items:
                raise ConflictError(f"a collection named {collection.name!r} exists")
            self._items[collection.name] = collection

    def replace(self, collection: Collection) -> None:
        """Overwrite a collection; NotFoundError when unknown."""
        with self._lock:
            if collection.name not in self._items:
                raise NotFoundError(f"no collection named {collection.name!r}")
            self._items[collection.name] = collection

    def delete(self, name: str) -> bool:
        """Remove a collection; False when there was none."""
        with self._lock:
            return self._items.pop(name, None) is not None
