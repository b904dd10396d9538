"""Cache adapters: Redis (the in-memory cache is in ``xnai.adapters.memory``)."""

from __future__ import annotations

from xnai.adapters.cache.redis_cache import RedisCache

__all__ = ["RedisCache"]
