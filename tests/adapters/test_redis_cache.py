"""The Redis cache against real servers: the shared one on 6379 (database 13, keys under a
namespace of each test) for the port contract, and private servers killed and restarted to
show that an outage never raises, is logged once, and heals by itself."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
import redis

from tests.contracts.cache_contract import CacheContract
from tests.redis_server import (
    SHARED_URL,
    RedisServer,
    free_port,
    server_available,
    shared_available,
    unique_namespace,
)
from xnai.adapters.cache import RedisCache
from xnai.adapters.cache.redis_cache import without_password
from xnai.adapters.memory.cache import MemoryCache
from xnai.adapters.memory.metrics import RecordingMetrics
from xnai.config import load_settings, redacted
from xnai.domain.cache import Cache
from xnai.domain.errors import ConfigError
from xnai.services.checkpoints import IngestCheckpoints

needs_shared = pytest.mark.skipif(
    not shared_available(), reason="Redis on 127.0.0.1:6379 not running"
)
needs_server = pytest.mark.skipif(not server_available(), reason="redis-server not installed")

HEALTH = "xoe_component_health_status"


@pytest.fixture
def raw() -> Iterator[redis.Redis]:
    """A plain client of the tests' database, to look at what the adapter wrote."""
    client = redis.Redis.from_url(SHARED_URL, decode_responses=True)
    yield client
    client.close()


def _drop_namespace(client: redis.Redis, namespace: str) -> None:
    keys = list(client.scan_iter(match=f"{namespace}:*"))
    if keys:
        client.delete(*keys)


@pytest.fixture
def shared(raw: redis.Redis) -> Iterator[RedisCache]:
    """A cache on the shared server under a namespace of this test only; removed after."""
    namespace = unique_namespace()
    cache = RedisCache(SHARED_URL, namespace=namespace)
    yield cache
    cache.close()
    _drop_namespace(raw, namespace)


class TestMemoryCache(CacheContract):
    @pytest.fixture
    def cache(self) -> Cache:
        return MemoryCache()


@needs_shared
class TestRedisCache(CacheContract):
    @pytest.fixture
    def cache(self, shared: RedisCache) -> Cache:
        return shared


def test_memory_cache_switched_off_behaves_like_an_unreachable_backend() -> None:
    now = [0.0]
    cache = MemoryCache(clock=lambda: now[0])
    cache.set("k", 1, 10)
    cache.available = False
    assert (cache.healthy, cache.get("k"), cache.set("k", 2), cache.delete_prefix("")) == (
        False,
        None,
        False,
        0,
    )
    cache.available = True
    assert cache.get("k") == 1
    now[0] = 10.0
    assert cache.get("k") is None


@needs_shared
def test_keys_live_under_the_namespace_as_json_text(shared: RedisCache, raw: redis.Redis) -> None:
    shared.set("answer:abc", {"text": "ok"}, 120)
    stored = raw.get(f"{shared.namespace}:answer:abc")
    assert isinstance(stored, str)
    assert json.loads(stored) == {"text": "ok"}
    assert 110 <= raw.ttl(f"{shared.namespace}:answer:abc") <= 120
    assert shared.ttl("answer:abc") is not None
    assert shared.ttl("answer:missing") is None


@needs_shared
def test_an_entry_that_is_not_json_reads_as_missing(shared: RedisCache, raw: redis.Redis) -> None:
    raw.set(f"{shared.namespace}:answer:garbage", "{not json")
    assert shared.get("answer:garbage") is None
    assert shared.healthy  # bad data is not an outage


@needs_shared
def test_ingest_checkpoint_has_the_seed_key_ttl_and_fields(raw: redis.Redis) -> None:
    name = f"test-{unique_namespace()}"
    cache = RedisCache(SHARED_URL)  # the default namespace: keys are xnai:snapshot:<name>
    at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    try:
        written = IngestCheckpoints(cache, clock=lambda: at).record(
            name, user_id="u-1", documents_count=3, ingestion_time=1.23456, generation=4
        )
        key = f"xnai:snapshot:{name}"
        stored = json.loads(str(raw.get(key)))
        assert stored == written
        assert stored == {
            "ingested_at": "2026-03-01T12:00:00+00:00",
            "user_id": "u-1",
            "documents_count": 3,
            "ingestion_time": 1.235,
            "generation": 4,
        }
        assert 86390 <= raw.ttl(key) <= 86400
        assert IngestCheckpoints(cache).read(name) == stored
        assert IngestCheckpoints(cache).read_all([name, "absent"]) == {name: stored}
    finally:
        raw.delete(f"xnai:snapshot:{name}")
        cache.close()


def test_passwords_never_reach_logs_or_status() -> None:
    assert without_password("redis://:s3cret@db.example:6380/2") == "redis://:***@db.example:6380/2"
    assert without_password("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    cache = RedisCache("redis://:s3cret@127.0.0.1:1/0")
    assert "s3cret" not in cache.location


def _cache_on(url: str, metrics: RecordingMetrics, retry_interval: float = 0.3) -> RedisCache:
    return RedisCache(
        url,
        retry_interval=retry_interval,
        on_change=lambda ok: metrics.set(HEALTH, 1.0 if ok else 0.0, component="redis"),
    )


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "xnai.cache" and r.levelno >= 30]


def _infos(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "xnai.cache" and r.levelno == 20]


def _until(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


@needs_server
def test_outage_never_raises_logs_once_flips_health_and_recovers_by_itself(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="xnai.cache")
    server = RedisServer()
    server.start()
    metrics = RecordingMetrics()
    cache = _cache_on(server.url, metrics)
    try:
        assert cache.set("answer:1", {"text": "before"}, 60)
        assert cache.get("answer:1") == {"text": "before"}
        assert cache.healthy and metrics.value(HEALTH, component="redis") == 1.0

        server.kill()
        started = time.perf_counter()
        for i in range(200):  # requests keep coming during the outage
            assert cache.get("answer:1") is None
            assert cache.set(f"answer:{i}", {"text": "during"}, 60) is False
            assert cache.delete_prefix("answer:") == 0
        elapsed = time.perf_counter() - started
        assert elapsed < 2.0, f"600 calls during an outage took {elapsed:.2f} s"
        assert cache.healthy is False
        assert metrics.value(HEALTH, component="redis") == 0.0
        time.sleep(0.4)  # past the back-off: a trial call fails again, silently
        assert cache.get("answer:1") is None
        warnings = _warnings(caplog)
        assert len(warnings) == 1, warnings
        assert f"127.0.0.1:{server.port}" in warnings[0] and "unavailable" in warnings[0]

        server.start()  # same port, empty (no persistence); the cache object is unchanged
        assert _until(lambda: cache.set("answer:2", {"text": "after"}, 60))
        assert cache.get("answer:2") == {"text": "after"}
        assert cache.healthy and metrics.value(HEALTH, component="redis") == 1.0
        assert len(_warnings(caplog)) == 1
        assert len([m for m in _infos(caplog) if "reachable again" in m]) == 1
    finally:
        cache.close()
        server.kill()


@needs_server
def test_health_recovers_without_traffic_other_than_health_checks() -> None:
    server = RedisServer()
    metrics = RecordingMetrics()
    cache = _cache_on(server.url, metrics, retry_interval=0.2)
    try:
        assert cache.healthy is False  # nothing listens yet
        assert metrics.value(HEALTH, component="redis") == 0.0
        server.start()
        assert _until(lambda: cache.healthy)
        assert metrics.value(HEALTH, component="redis") == 1.0
    finally:
        cache.close()
        server.kill()


def test_a_server_that_never_answers_costs_one_timeout_then_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A listening socket that never accepts: connecting works, every read times out.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", free_port()))
        silent.listen(16)
        port = silent.getsockname()[1]
        cache = RedisCache(f"redis://127.0.0.1:{port}/0", timeout=0.2, retry_interval=30)
        started = time.perf_counter()
        assert cache.get("answer:x") is None
        first = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(100):
            assert cache.get("answer:x") is None
            assert cache.set("answer:x", 1) is False
        rest = time.perf_counter() - started
        assert first < 1.0, first
        assert rest < 0.05, rest  # during the back-off nothing touches the network
        assert cache.healthy is False
        assert len(_warnings(caplog)) == 1
        cache.close()


def test_config_refuses_a_password_in_the_url_and_other_schemes() -> None:
    with pytest.raises(ConfigError, match="redis.password"):
        load_settings(redis={"url": "redis://:s3cret@127.0.0.1:6379/0"})
    with pytest.raises(ConfigError, match="redis://"):
        load_settings(redis={"url": "http://127.0.0.1:6379"})
    settings = load_settings(redis={"url": " rediss://cache.internal:6380/2 ", "password": "pw"})
    assert settings.redis.url == "rediss://cache.internal:6380/2"
    assert redacted(settings)["redis"]["password"] != "pw"
    assert load_settings().redis.url == ""  # no Redis unless configured
