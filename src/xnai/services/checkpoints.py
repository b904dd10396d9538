"""Ingest checkpoints: after every ingest run, ``snapshot:<collection>`` in the cache says
when the collection was last ingested, by whom, how many documents it holds and how long
the run took (the seed's ``xnai:snapshot:<name>`` keys, kept for a day)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from xnai.domain.cache import Cache

SNAPSHOT_PREFIX = "snapshot:"
DEFAULT_TTL = 86400


class IngestCheckpoints:
    """Writes and reads the checkpoint of each collection."""

    def __init__(
        self,
        cache: Cache,
        ttl: int = DEFAULT_TTL,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.cache = cache
        self.ttl = ttl
        self._clock = clock

    def record(
        self,
        name: str,
        *,
        user_id: str,
        documents_count: int,
        ingestion_time: float,
        **extra: Any,
    ) -> dict[str, Any]:
        """Store the checkpoint of ``name`` (a collection) and return it; a cache that is
        away drops it silently (the index and the manifest are the record of truth)."""
        value = {
            "ingested_at": self._clock().isoformat(timespec="seconds"),
            "user_id": user_id,
            "documents_count": documents_count,
            "ingestion_time": round(ingestion_time, 3),
            **extra,
        }
        self.cache.set(SNAPSHOT_PREFIX + name, value, self.ttl)
        return value

    def read(self, name: str) -> dict[str, Any] | None:
        """The checkpoint of ``name``; None when there is none (or the cache is away)."""
        value = self.cache.get(SNAPSHOT_PREFIX + name)
        return value if isinstance(value, dict) else None

    def read_all(self, names: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The checkpoints of those of ``names`` that have one."""
        found = {name: self.read(name) for name in names}
        return {name: value for name, value in found.items() if value is not None}
