"""An in-memory ``Cache``: the reference implementation for tests and single processes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any


class MemoryCache:
    """Values are stored as JSON text, so they come back as fresh copies exactly as from
    Redis; ``available = False`` makes it behave like an unreachable backend."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._items: dict[str, tuple[str, float | None]] = {}
        self.available = True

    @property
    def healthy(self) -> bool:
        """False while ``available`` is switched off."""
        return self.available

    def get(self, key: str) -> Any | None:
        """The value at ``key``; None when missing, expired or unavailable."""
        if not self.available:
            return None
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            text, expires = item
            if expires is not None and self._clock() >= expires:
                del self._items[key]
                return None
        return json.loads(text)

    def set(self, key: str, value: Any, ttl: int | None = None) -> bool:
        """Store ``value`` for ``ttl`` seconds; False when unavailable or not JSON-ready."""
        if not self.available:
            return False
        try:
            text = json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError):
            return False
        with self._lock:
            self._items[key] = (text, None if ttl is None else self._clock() + ttl)
        return True

    def delete(self, key: str) -> bool:
        """Remove ``key``; True when it existed (expired keys count as gone)."""
        if not self.available:
            return False
        with self._lock:
            item = self._items.pop(key, None)
        return item is not None and (item[1] is None or self._clock() < item[1])

    def delete_prefix(self, prefix: str) -> int:
        """Remove every key starting with ``prefix``."""
        if not self.available:
            return 0
        with self._lock:
            doomed = [k for k in self._items if k.startswith(prefix)]
            for key in doomed:
                del self._items[key]
        return len(doomed)
