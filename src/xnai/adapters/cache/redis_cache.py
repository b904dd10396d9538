"""The ``Cache`` port on Redis: short timeouts, never an exception to callers, self-healing.

An outage costs each caller at most one socket timeout (a refused connection costs less than
a millisecond): the first failure marks the cache unhealthy and logs one warning, and for
``retry_interval`` seconds afterwards every call answers at once without touching the network.
Then one call tries again; the first success marks it healthy and logs the recovery.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from xnai.domain.errors import ConfigError

log = logging.getLogger("xnai.cache")

T = TypeVar("T")

HealthListener = Callable[[bool], None]

_GLOB_SPECIAL = "\\*?[]"


class RedisCache:
    """A ``Cache`` on one Redis database; keys live under ``<namespace>:``."""

    def __init__(
        self,
        url: str,
        *,
        password: str | None = None,
        namespace: str = "xnai",
        timeout: float = 0.2,
        retry_interval: float = 2.0,
        on_change: HealthListener | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        try:
            # No client-side retries: a retry loop would multiply the cost of an outage.
            self._client = redis.Redis.from_url(
                url,
                password=password or None,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0),
                decode_responses=True,
            )
        except ValueError as exc:
            raise ConfigError(f"redis.url: {exc}") from None
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self.location = without_password(url)
        self.namespace = namespace
        self.retry_interval = retry_interval
        self.on_change = on_change
        self._clock = clock
        self._lock = threading.Lock()
        self._state: bool | None = None  # None until the first call tells
        self._retry_at = 0.0

    # -- the port ---------------------------------------------------------------------------

    @property
    def healthy(self) -> bool:
        """Whether Redis answers; asks it (one PING) when not known yet or when an outage's
        back-off has passed, so health recovers even without traffic."""
        with self._lock:
            due = self._state is None or (self._state is False and self._clock() >= self._retry_at)
        if due:
            self._call(self._client.ping, False)
        return self._state is True

    def get(self, key: str) -> Any | None:
        """The JSON value at ``key``; None when missing, unreadable or Redis is away."""
        raw = self._call(lambda: self._client.get(self._key(key)), None)
        if not isinstance(raw, str):
            return None
        try:
            return json.loads(raw)
        except ValueError:
            log.warning("cache entry %s is not JSON; ignored", self._key(key))
            return None

    def set(self, key: str, value: Any, ttl: int | None = None) -> bool:
        """Store ``value`` as JSON for ``ttl`` seconds; False when it was not stored."""
        try:
            text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError):
            return False
        return self._call(lambda: bool(self._client.set(self._key(key), text, ex=ttl)), False)

    def delete(self, key: str) -> bool:
        """Remove ``key``; True when it existed."""
        return bool(self._call(lambda: self._client.delete(self._key(key)), 0))

    def delete_prefix(self, prefix: str) -> int:
        """Remove every key starting with ``prefix`` (SCAN and UNLINK in batches)."""
        return self._call(lambda: self._unlink_all(self._key(prefix)), 0)

    def ttl(self, key: str) -> int | None:
        """Seconds ``key`` has left; None when it has no expiry, is missing or Redis is away."""
        left = self._call(lambda: self._client.ttl(self._key(key)), -2)
        return left if isinstance(left, int) and left >= 0 else None

    def close(self) -> None:
        """Release the connection pool."""
        self._client.close()

    # -- internals --------------------------------------------------------------------------

    def _key(self, key: str) -> str:
        return f"{self.namespace}:{key}"

    def _unlink_all(self, prefix: str) -> int:
        removed = 0
        for batch in _batches(self._client.scan_iter(match=_glob_escape(prefix) + "*", count=500)):
            removed += int(self._client.unlink(*batch))
        return removed

    def _call(self, op: Callable[[], T], default: T) -> T:
        """``op()``, or ``default`` when Redis fails or an outage's back-off is running."""
        if not self._may_try():
            return default
        try:
            result = op()
        except self._errors as exc:
            self._mark(False, exc)
            return default
        self._mark(True)
        return result

    def _may_try(self) -> bool:
        with self._lock:
            if self._state is not False:
                return True
            now = self._clock()
            if now < self._retry_at:
                return False
            # This caller makes the one trial of this interval; the others keep skipping.
            self._retry_at = now + self.retry_interval
            return True

    def _mark(self, healthy: bool, exc: BaseException | None = None) -> None:
        if healthy and self._state is True:
            return  # the common case, without the lock
        with self._lock:
            changed = self._state is not healthy
            was = self._state
            self._state = healthy
            if not healthy:
                self._retry_at = self._clock() + self.retry_interval
        if not changed:
            return
        if healthy and was is False:
            log.info("redis at %s is reachable again; the cache is back in use", self.location)
        elif not healthy:
            log.warning(
                "redis at %s is unavailable (%s: %s); working without the cache and trying "
                "again every %.1f s",
                self.location,
                type(exc).__name__,
                exc,
                self.retry_interval,
            )
        if self.on_change is not None:
            try:
                self.on_change(healthy)
            except Exception:  # a failing listener must not break the caller
                log.exception("cache health listener failed")


def without_password(url: str) -> str:
    """``url`` with any password replaced by ``***``, for logs and status output."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _glob_escape(text: str) -> str:
    """``text`` as a literal in a Redis glob pattern."""
    return "".join("\\" + ch if ch in _GLOB_SPECIAL else ch for ch in text)


def _batches(keys: Iterator[str], size: int = 500) -> Iterator[list[str]]:
    batch: list[str] = []
    for key in keys:
        batch.append(key)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
