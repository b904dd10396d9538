"""The cache port: a shared JSON key-value store with expiry (Redis is an adapter).

A cache is an optimisation, never a dependency: an implementation does not raise to its
callers. When its backend fails, reads miss, writes are dropped, ``healthy`` turns false,
and it recovers by itself when the backend returns.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Cache(Protocol):
    """Keys are short strings such as ``answer:<sha256>``, placed by the adapter under its
    namespace (``xnai:`` by default); values are JSON-ready data."""

    @property
    def healthy(self) -> bool:
        """False while the backend cannot be reached (reads miss, writes are dropped)."""
        ...

    def get(self, key: str) -> Any | None:
        """The value stored at ``key``; None when missing, expired or unreadable."""
        ...

    def set(self, key: str, value: Any, ttl: int | None = None) -> bool:
        """Store ``value`` at ``key`` for ``ttl`` seconds (None: no expiry); False when the
        value could not be stored."""
        ...

    def delete(self, key: str) -> bool:
        """Remove ``key``; True when it existed."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Remove every key that starts with ``prefix``; how many were removed."""
        ...
