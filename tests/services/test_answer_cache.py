"""The answer cache service over the in-memory cache: keys, index versions, what is stored."""

from __future__ import annotations

from dataclasses import replace

from tests.memory_wiring import MemoryServices
from xnai.adapters.memory.cache import MemoryCache
from xnai.adapters.memory.llm import FakeChatModel
from xnai.adapters.memory.metrics import RecordingMetrics
from xnai.domain.access import AccessScope
from xnai.domain.models import ChatMessage, SearchMode
from xnai.services.answer_cache import CachedAnswerService, CachedPrepared, IndexVersion, normalise
from xnai.services.knowledge import Source, sha256_bytes

ALL = AccessScope.everything("u-admin")


def source(name: str, text: str) -> Source:
    data = text.encode()
    return Source(f"/lib/{name}", sha256_bytes(data), len(data), name, text, "text/plain", "t", "1")


def wrap(c: MemoryServices, cache: MemoryCache, metrics: RecordingMetrics) -> CachedAnswerService:
    return CachedAnswerService(
        c.answers,
        cache,
        index_version=IndexVersion(lambda: c.kb.snapshot),
        model_id="fake",
        ttl=60,
        metrics=lambda: metrics,
        keyring=c.keyring,
    )


def test_normalise_folds_case_and_spacing() -> None:
    assert normalise("  At WHAT\trpm\n does it  run? ") == "at what rpm does it run?"


def test_keys_differ_by_scope_settings_and_history_only(services: MemoryServices) -> None:
    svc = wrap(services, MemoryCache(), RecordingMetrics())
    key = svc.key_for("pump rpm", scope=ALL)
    assert svc.key_for("PUMP   rpm", scope=AccessScope.everything("someone-else")) == key
    others = {
        svc.key_for("pump rpm", scope=AccessScope.only(["default"], "u-1")),
        svc.key_for("pump rpm", scope=AccessScope.only(["default", "hr"], "u-1")),
        svc.key_for("pump rpm", scope=ALL, mode=SearchMode.DENSE),
        svc.key_for("pump rpm", scope=ALL, top_k=1),
        svc.key_for("pump rpm", scope=ALL, max_tokens=7),
        svc.key_for("pump rpm", scope=ALL, history=[ChatMessage("user", "hi")]),
        svc.key_for("pump rpms", scope=ALL),
    }
    assert key not in others and len(others) == 7
    assert svc.key_for("pump rpm", scope=AccessScope.only(["hr", "default"], "u-2")) in others


def test_keys_differ_by_what_the_model_is_shown(services: MemoryServices) -> None:
    svc = wrap(services, MemoryCache(), RecordingMetrics())
    keys = set()
    for evidence, tokens in (("sentences", 400), ("sentences", 300), ("chunks", 400)):
        svc.policy = replace(svc.policy, evidence=evidence, evidence_tokens=tokens)
        keys.add(svc.key_for("pump rpm", scope=ALL))
    assert len(keys) == 3


def test_a_new_generation_makes_old_answers_unreachable(services: MemoryServices) -> None:
    cache, metrics = MemoryCache(), RecordingMetrics()
    svc = wrap(services, cache, metrics)
    services.kb.ingest([source("pump.txt", "The coolant pump runs at 1450 rpm.")], user="t")
    version = IndexVersion(lambda: services.kb.snapshot)
    before = version()
    assert before.startswith(f"{services.kb.snapshot.generation}:")
    first = svc.complete(svc.prepare("pump rpm", scope=ALL))
    hit = svc.prepare("pump rpm", scope=ALL)
    assert isinstance(hit, CachedPrepared) and hit.hit is not None
    assert svc.complete(hit).text == first.text
    services.kb.ingest([source("valve.txt", "The valve opens at 3 bar.")], user="t")
    assert version() != before
    after = svc.prepare("pump rpm", scope=ALL)
    assert isinstance(after, CachedPrepared) and after.hit is None
    assert metrics.value("xoe_cache_requests_total", result="hit") == 1.0
    assert metrics.value("xoe_cache_requests_total", result="miss") == 2.0


def test_an_unavailable_cache_counts_errors_and_answers_anyway(services: MemoryServices) -> None:
    cache, metrics = MemoryCache(), RecordingMetrics()
    svc = wrap(services, cache, metrics)
    services.kb.ingest([source("pump.txt", "The coolant pump runs at 1450 rpm.")], user="t")
    cache.available = False
    for _ in range(2):
        assert "1450" in svc.complete(svc.prepare("pump rpm", scope=ALL)).text
    assert metrics.value("xoe_cache_requests_total", result="error") == 2.0
    cache.available = True
    svc.complete(svc.prepare("pump rpm", scope=ALL))
    assert svc.prepare("pump rpm", scope=ALL).grounded
    assert metrics.value("xoe_cache_requests_total", result="hit") == 1.0


def test_an_empty_answer_is_not_stored(services: MemoryServices) -> None:
    cache = MemoryCache()
    svc = wrap(services, cache, RecordingMetrics())
    services.kb.ingest([source("pump.txt", "The coolant pump runs at 1450 rpm.")], user="t")
    svc.model = FakeChatModel(reply=lambda messages: "   ")
    svc.complete(svc.prepare("pump rpm", scope=ALL))
    assert cache.delete_prefix("answer:") == 0
    assert svc.forget() == 0
