"""Cache adapters: Redis, and an in-memory cache for tests and single processes."""

from __future__ import annotations

from xnai.adapters.cache.memory import MemoryCache
from xnai.adapters.cache.redis_cache import RedisCache

__all__ = ["MemoryCache", "RedisCache"]
