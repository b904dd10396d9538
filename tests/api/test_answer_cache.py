"""The answer cache over HTTP on real Redis: hits skip retrieval and the model, entries never
cross access scopes, hits are audited, erasure empties the cache, and an outage of Redis is
never an error for the caller."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from tests.api.conftest import FAST_HASHER, bearer, seed, token_for
from tests.redis_server import (
    SHARED_URL,
    RedisServer,
    free_port,
    server_available,
    shared_available,
    unique_namespace,
)
from xnai.adapters.memory.llm import FakeChatModel
from xnai.adapters.memory.metrics import RecordingMetrics
from xnai.api.app import create_app
from xnai.bootstrap import Container
from xnai.domain.rbac import Role
from xnai.services.answer_cache import CachedAnswerService
from xnai.services.audit import Auditor
from xnai.services.knowledge import Source, sha256_bytes

pytestmark = pytest.mark.skipif(
    not shared_available(), reason="Redis on 127.0.0.1:6379 not running"
)

QUESTION = "At what rpm does the coolant pump run?"
SECRET = "CANARY-VAULT-5e1d"
HITS = "xoe_cache_requests_total"


@pytest.fixture
def namespace() -> Iterator[str]:
    """A key namespace of this test on the shared server (database 13), removed after."""
    ns = unique_namespace()
    yield ns
    client = redis.Redis.from_url(SHARED_URL, decode_responses=True)
    keys = list(client.scan_iter(match=f"{ns}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def _keys(namespace: str, prefix: str = "") -> list[str]:
    client = redis.Redis.from_url(SHARED_URL, decode_responses=True)
    try:
        return sorted(client.scan_iter(match=f"{namespace}:{prefix}*"))
    finally:
        client.close()


def cached_container(
    make_container: Callable[..., Container], url: str, namespace: str = "xnai"
) -> Container:
    c = make_container(redis={"url": url, "namespace": namespace, "retry_interval": 0.3})
    c.auth.hasher = FAST_HASHER
    c.metrics = RecordingMetrics()
    seed(c)
    return c


@pytest.fixture
def cached(make_container: Callable[..., Container], namespace: str) -> Container:
    """A seeded container whose answers are cached in Redis."""
    return cached_container(make_container, SHARED_URL, namespace)


def model_calls(c: Container) -> int:
    model = c.model.load()
    assert isinstance(model, FakeChatModel)
    return len(model.calls)


def lookups(c: Container) -> dict[str, float]:
    metrics = c.metrics
    assert isinstance(metrics, RecordingMetrics)
    return {r: metrics.value(HITS, result=r) for r in ("hit", "miss", "error")}


def redis_health(c: Container) -> float:
    metrics = c.metrics
    assert isinstance(metrics, RecordingMetrics)
    return metrics.value("xoe_component_health_status", component="redis")


def ask(client: TestClient, query: str = QUESTION, **extra: Any) -> dict[str, Any]:
    r = client.post("/v1/query", json={"query": query, **extra})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


@pytest.fixture
def client(cached: Container) -> Iterator[TestClient]:
    with TestClient(
        create_app(cached, warm=False), headers=bearer(token_for(cached, "admin"))
    ) as tc:
        yield tc


def test_the_same_question_again_is_answered_from_the_cache(
    cached: Container, client: TestClient
) -> None:
    assert isinstance(cached.answers, CachedAnswerService)
    first = ask(client)
    calls = model_calls(cached)
    assert calls == 1 and "1450 rpm" in first["response"]
    # Case and spacing do not make a different question.
    second = ask(client, "  at WHAT rpm does the\tcoolant pump   run? ")
    assert model_calls(cached) == calls, "a hit must not call the model"
    assert second["response"] == first["response"]
    assert second["sources"] == first["sources"]
    assert second["metadata"]["model"] == first["metadata"]["model"]
    assert lookups(cached) == {"hit": 1.0, "miss": 1.0, "error": 0.0}
    assert len(_keys(cached.settings.redis.namespace, "answer:")) == 1
    # Other settings are other questions.
    ask(client, top_k=2)
    assert model_calls(cached) == calls + 1


def test_a_hit_streams_as_one_token_and_done_without_the_model(
    cached: Container, client: TestClient
) -> None:
    first = ask(client)
    calls = model_calls(cached)
    r = client.post("/v1/query", json={"query": QUESTION, "stream": True})
    assert r.status_code == 200
    events = sse_events(r.text)
    assert [kind for kind, _ in events] == ["sources", "token", "done"]
    assert events[1][1]["text"] == first["response"]
    assert events[2][1]["sources"] == first["sources"]
    assert model_calls(cached) == calls


def test_a_streamed_answer_is_stored_once_it_is_complete(
    cached: Container, client: TestClient
) -> None:
    r = client.post("/v1/query", json={"query": QUESTION, "stream": True})
    streamed = "".join(d["text"] for kind, d in sse_events(r.text) if kind == "token")
    calls = model_calls(cached)
    assert ask(client)["response"] == streamed.strip()
    assert model_calls(cached) == calls


def test_openai_compatible_chat_uses_the_cache_too(cached: Container, client: TestClient) -> None:
    chat = {"messages": [{"role": "user", "content": QUESTION}]}
    first = client.post("/v1/chat/completions", json=chat).json()
    calls = model_calls(cached)
    second = client.post("/v1/chat/completions", json=chat).json()
    assert model_calls(cached) == calls
    assert second["choices"] == first["choices"]
    assert second["xnai_sources"] == first["xnai_sources"]
    # An earlier turn makes it another conversation.
    longer = {"messages": [{"role": "user", "content": "Hello"}, *chat["messages"]]}
    client.post("/v1/chat/completions", json=longer)
    assert model_calls(cached) == calls + 1


def _private_note(collection: str) -> Source:
    text = (
        "# Coolant pump rpm\n\nThe coolant pump runs at 900 rpm: Alice measured at what "
        f"rpm the coolant pump does run. {SECRET}.\n"
    )
    data = text.encode()
    return Source(
        "/private/alice/pump.md",
        sha256_bytes(data),
        len(data),
        "Alice pump notes",
        text,
        "text/markdown",
        "test",
        "1",
        collection,
    )


@pytest.mark.parametrize("first_asker", ["bob", "alice"])
def test_users_with_different_scopes_never_share_an_entry(
    cached: Container, first_asker: str
) -> None:
    headers = {name: bearer(token_for(cached, name, Role.VIEWER)) for name in ("alice", "bob")}
    cached.access.create("alice-private", readable_users=["alice"])
    assert cached.kb.ingest([_private_note("alice-private")], user="alice").ok
    app = create_app(cached, warm=False)
    answers: dict[str, list[dict[str, Any]]] = {"alice": [], "bob": []}
    with TestClient(app) as tc:
        order = [first_asker, *({"alice", "bob"} - {first_asker})] * 2
        for name in order:
            r = tc.post("/v1/query", json={"query": QUESTION}, headers=headers[name])
            assert r.status_code == 200, r.text
            answers[name].append(r.json())
    # Each asked twice: one miss and one hit each, never the other's entry.
    assert lookups(cached) == {"hit": 2.0, "miss": 2.0, "error": 0.0}
    assert model_calls(cached) == 2
    assert all(SECRET not in json.dumps(a) for a in answers["bob"])
    assert all(SECRET in json.dumps(a["sources"]) for a in answers["alice"])
    assert all("900 rpm" in a["response"] for a in answers["alice"])
    assert all("1450 rpm" in a["response"] for a in answers["bob"])
    # The same answer, given twice: each time with its own signed bundle.
    assert answers["alice"][0] == {
        **answers["alice"][1],
        "metadata": answers["alice"][0]["metadata"],
        "answer_id": answers["alice"][0]["answer_id"],
    }
    assert answers["alice"][0]["answer_id"] != answers["alice"][1]["answer_id"]
    assert answers["bob"][0]["sources"] == answers["bob"][1]["sources"]


def test_a_hit_is_still_a_query_audit_event_with_the_chunks_seen(
    cached: Container, client: TestClient
) -> None:
    ask(client)
    ask(client)
    audit = cached.audit
    assert isinstance(audit, Auditor)
    queries = [e for e in audit.events if e["event_type"] == "query"]
    assert len(queries) == 2
    miss, hit = queries
    assert hit["user_id"] == miss["user_id"] is not None
    assert hit["details"]["chunk_ids"] == miss["details"]["chunk_ids"] != []
    assert hit["details"]["doc_ids"] == miss["details"]["doc_ids"]
    assert hit["details"]["query_sha256"] == miss["details"]["query_sha256"]
    assert hit["details"]["cache"] == "hit" and "cache" not in miss["details"]
    assert audit.verify().ok


def test_answers_that_are_not_generated_are_not_cached(
    cached: Container, client: TestClient
) -> None:
    for _ in range(2):
        body = ask(client, "zebra quantum saxophone", mode="dense")
        assert body["sources"] == []
    ask(client, generate=False)
    assert _keys(cached.settings.redis.namespace, "answer:") == []
    assert lookups(cached)["hit"] == 0


def test_a_failed_generation_is_not_cached(cached: Container, client: TestClient) -> None:
    failing = FakeChatModel(fail_times=1)
    cached.answers.model = failing  # the inner service answers with this model now
    r = client.post("/v1/query", json={"query": QUESTION, "stream": True})
    assert [kind for kind, _ in sse_events(r.text)] == ["sources", "error"]
    assert _keys(cached.settings.redis.namespace, "answer:") == []
    ask(client)
    assert len(failing.calls) == 2


def test_erasure_drops_every_cached_answer(cached: Container, client: TestClient) -> None:
    ask(client)
    ask(client, "economy class flights")
    namespace = cached.settings.redis.namespace
    assert len(_keys(namespace, "answer:")) == 2
    token_for(cached, "leaver", Role.VIEWER)
    cached.privacy.erase("leaver", actor="admin")
    assert _keys(namespace, "answer:") == []
    calls = model_calls(cached)
    ask(client)
    assert model_calls(cached) == calls + 1


def test_ingest_writes_the_collection_checkpoint(
    cached: Container, namespace: str, tmp_path: Path
) -> None:
    report = cached.ingestion.ingest_uploads([("notes.md", b"# Notes\n\nPumps hum.\n")], user="cli")
    assert report.ok
    client = redis.Redis.from_url(SHARED_URL, decode_responses=True)
    key = f"{namespace}:snapshot:default"
    stored = json.loads(str(client.get(key)))
    assert 86390 <= client.ttl(key) <= 86400
    client.close()
    assert stored["user_id"] == "cli"
    assert stored["documents_count"] == 3  # the two seeded documents and the upload
    assert stored["ingestion_time"] >= 0 and stored["generation"] == report.generation
    assert stored["ingested_at"].endswith("+00:00")
    doc = tmp_path / "more.md"
    doc.write_text("# More\n\nValves click.\n", encoding="utf-8")
    cached.access.create("team")
    cached.ingestion.ingest_files([doc], user="cli", collection="team")
    checkpoints = cached.checkpoints
    assert checkpoints is not None
    assert set(checkpoints.read_all(cached.access.collections())) == {"default", "team"}
    team = checkpoints.read("team")
    assert team is not None and team["documents_count"] == 1


def test_without_redis_there_is_no_cache_and_everything_works(container: Container) -> None:
    container.auth.hasher = FAST_HASHER
    container.metrics = RecordingMetrics()
    seed(container)
    assert container.cache is None and container.checkpoints is None
    assert not isinstance(container.answers, CachedAnswerService)
    with TestClient(
        create_app(container, warm=False), headers=bearer(token_for(container, "admin"))
    ) as tc:
        first = ask(tc)
        before = model_calls(container)
        again = ask(tc)
        assert model_calls(container) == before + 1, "without a cache the model answers again"
        assert again["response"] == first["response"]
    assert lookups(container) == {"hit": 0.0, "miss": 0.0, "error": 0.0}
    assert container.forget_cached_answers() == 0


def test_redis_unreachable_from_the_start_is_never_an_error(
    make_container: Callable[..., Container],
) -> None:
    c = cached_container(make_container, f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(create_app(c, warm=False), headers=bearer(token_for(c, "admin"))) as tc:
        started = time.perf_counter()
        for _ in range(3):
            assert "1450 rpm" in ask(tc)["response"]
        elapsed = time.perf_counter() - started
    assert model_calls(c) == 3
    assert lookups(c) == {"hit": 0.0, "miss": 0.0, "error": 3.0}
    assert redis_health(c) == 0.0
    assert c.cache is not None and c.cache.healthy is False
    assert elapsed < 5.0


@pytest.mark.skipif(not server_available(), reason="redis-server not installed")
def test_an_outage_mid_service_is_survived_and_healed_without_a_restart(
    make_container: Callable[..., Container], caplog: pytest.LogCaptureFixture
) -> None:
    server = RedisServer()
    server.start()
    try:
        c = cached_container(make_container, server.url)
        headers = bearer(token_for(c, "admin"))
        with TestClient(create_app(c, warm=False), headers=headers) as tc:
            first = ask(tc)
            second = ask(tc)
            assert second["response"] == first["response"]
            assert lookups(c) == {"hit": 1.0, "miss": 1.0, "error": 0.0}
            assert redis_health(c) == 1.0

            server.kill()
            during = [ask(tc) for _ in range(5)]  # 200s, answered without the cache
            assert all(d["response"] == first["response"] for d in during)
            assert lookups(c)["error"] == 5.0 and redis_health(c) == 0.0
            calls = model_calls(c)

            server.start()  # same port, empty; the service was never restarted
            time.sleep(0.4)  # past the back-off
            assert ask(tc)["response"] == first["response"]  # miss: stored again
            assert ask(tc)["response"] == first["response"]  # hit
            assert model_calls(c) == calls + 1
            assert redis_health(c) == 1.0 and c.cache is not None and c.cache.healthy
        warnings = [r for r in caplog.records if r.name == "xnai.cache" and r.levelno >= 30]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
    finally:
        server.kill()


def test_entries_are_sealed_and_a_tampered_entry_is_a_miss(
    cached: Container, client: TestClient, namespace: str
) -> None:
    first = ask(client)
    (key,) = _keys(namespace, "answer:")
    raw = redis.Redis.from_url(SHARED_URL, decode_responses=True)
    stored = str(raw.get(key))
    # Neither the answer, nor the sources' text, nor the question is readable in Redis.
    assert "1450" not in stored and "coolant" not in stored.lower()
    entry = json.loads(stored)
    assert set(entry) == {"v", "scope", "stored_at", "sealed"}
    calls = model_calls(cached)

    entry["sealed"] = entry["sealed"][:-8] + "AAAAAAAA"
    raw.set(key, json.dumps(entry), ex=60)
    assert ask(client)["response"] == first["response"]  # a miss, answered again and stored
    assert model_calls(cached) == calls + 1

    entry = json.loads(str(raw.get(key)))
    entry["scope"] = "someone-else"
    raw.set(key, json.dumps(entry), ex=60)
    ask(client)
    assert model_calls(cached) == calls + 2
    raw.close()
    assert lookups(cached) == {"hit": 0.0, "miss": 3.0, "error": 0.0}


def _open_breaker(c: Container) -> None:
    for _ in range(c.breaker.fail_max):
        c.breaker.failure(c.breaker.acquire())
    assert c.breaker.state.name == "OPEN"


def test_cached_answers_are_served_while_the_model_breaker_is_open(
    cached: Container, client: TestClient
) -> None:
    first = ask(client)
    chat = {"messages": [{"role": "user", "content": QUESTION}]}
    first_chat = client.post("/v1/chat/completions", json=chat).json()
    calls = model_calls(cached)
    _open_breaker(cached)
    # Not cached: refused at once, the model is not called.
    r = client.post("/v1/query", json={"query": "economy class flights"})
    assert r.status_code == 503 and "Retry-After" in r.headers
    # Cached: answered without the model, as JSON, as a stream and in the OpenAI shape.
    assert ask(client)["response"] == first["response"]
    r = client.post("/v1/query", json={"query": QUESTION, "stream": True})
    assert [kind for kind, _ in sse_events(r.text)] == ["sources", "token", "done"]
    again = client.post("/v1/chat/completions", json=chat)
    assert again.status_code == 200
    assert again.json()["choices"] == first_chat["choices"]
    assert model_calls(cached) == calls
    assert cached.generation.depth == 0  # hits never took a place in the queue
