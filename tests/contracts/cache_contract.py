"""Behaviour every Cache adapter must share; subclass and override the `cache` fixture."""

from __future__ import annotations

import time

import pytest

from xnai.domain.cache import Cache

VALUE = {"text": "Pumpe läuft mit 1450 U/min", "numbers": [1, 2.5, None], "ok": True}


class CacheContract:
    """Mixin of contract tests; a `Test...` subclass supplies `cache` (a reachable backend
    with no keys of its own)."""

    @pytest.fixture
    def cache(self) -> Cache:
        """The adapter under test (subclasses override this fixture)."""
        pytest.fail("CacheContract subclasses must override the `cache` fixture")

    def test_satisfies_the_port_and_is_healthy(self, cache: Cache) -> None:
        assert isinstance(cache, Cache)
        assert cache.healthy is True

    def test_json_values_round_trip_as_copies(self, cache: Cache) -> None:
        assert cache.set("answer:a", VALUE, 60) is True
        got = cache.get("answer:a")
        assert got == VALUE
        got["text"] = "changed"
        assert cache.get("answer:a") == VALUE

    def test_missing_keys_read_as_none(self, cache: Cache) -> None:
        assert cache.get("answer:never-written") is None

    def test_set_overwrites(self, cache: Cache) -> None:
        cache.set("snapshot:lib", {"n": 1})
        cache.set("snapshot:lib", {"n": 2})
        assert cache.get("snapshot:lib") == {"n": 2}

    def test_entries_expire_after_their_ttl(self, cache: Cache) -> None:
        cache.set("answer:short", "x", 1)
        cache.set("answer:long", "y", 60)
        time.sleep(1.2)
        assert cache.get("answer:short") is None
        assert cache.get("answer:long") == "y"

    def test_delete_reports_whether_the_key_existed(self, cache: Cache) -> None:
        cache.set("answer:d", 1)
        assert cache.delete("answer:d") is True
        assert cache.get("answer:d") is None
        assert cache.delete("answer:d") is False

    def test_delete_prefix_removes_exactly_the_prefix(self, cache: Cache) -> None:
        for i in range(7):
            cache.set(f"answer:{i}", i, 60)
        cache.set("answers-are-not-answer", 1, 60)
        cache.set("snapshot:default", {"documents_count": 2}, 60)
        # Glob characters in a prefix are literal.
        cache.set("odd*[key]?x", 1, 60)
        cache.set("odd-other", 1, 60)
        assert cache.delete_prefix("answer:") == 7
        assert all(cache.get(f"answer:{i}") is None for i in range(7))
        assert cache.get("answers-are-not-answer") == 1
        assert cache.get("snapshot:default") == {"documents_count": 2}
        assert cache.delete_prefix("odd*[") == 1
        assert cache.get("odd-other") == 1
        assert cache.delete_prefix("answer:") == 0

    def test_values_that_are_not_json_are_refused_without_raising(self, cache: Cache) -> None:
        assert cache.set("answer:bad", {"when": object()}) is False
        assert cache.get("answer:bad") is None
