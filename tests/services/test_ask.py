"""The ask service of a real container (fake model and embedder, temp data directory): access
scope, answer cache on real Redis, generation queue, breaker, audit and query metrics."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis

from tests.redis_server import SHARED_URL, shared_available, unique_namespace
from xnai.adapters.memory import RecordingAudit, RecordingMetrics
from xnai.bootstrap import Container
from xnai.domain.access import Collection
from xnai.domain.errors import CircuitOpenError, InvalidInputError, QueueFullError
from xnai.domain.limits import MAX_MESSAGES, MAX_QUESTION_CHARS, MAX_TITLE_CHARS
from xnai.domain.models import Answer, ChatMessage, Citation, SearchMode
from xnai.domain.rbac import LOCAL_ADMIN, Principal, Role
from xnai.services.answer import PLAIN_PROMPT, Done, Token
from xnai.services.ask import Asked, Asker, Question, answer_json
from xnai.services.knowledge import Source, sha256_bytes

PUMP = "At what rpm does the coolant pump run?"
MERGER = "When does the zeppelin merger close?"
VIEWER = Principal("u-victor", "victor", Role.VIEWER, via="local")
ALICE = Principal("u-alice", "alice", Role.VIEWER, via="local")
COUNT = "xoe_query_count_total"
LATENCY = "xoe_query_latency_seconds"


def source(name: str, text: str, collection: str = "default") -> Source:
    data = text.encode()
    digest = sha256_bytes(data)
    return Source(f"/lib/{name}", digest, len(data), name, text, "text/plain", "t", "1", collection)


def library(c: Container) -> Container:
    """``c`` with a pump note for everyone, a merger note only alice may read, and in-memory
    metrics and audit."""
    c.metrics = RecordingMetrics()
    c.answers.audit = RecordingAudit()
    c.access.store.create(Collection("board", readable_users=(ALICE.user_id,)))
    c.kb.ingest(
        [
            source("pump.txt", "The coolant pump of reactor seven runs at 1450 rpm."),
            source("merger.txt", "The zeppelin merger closes on the ninth of March.", "board"),
        ],
        user="t",
    )
    return c


def audit_of(c: Container) -> list[dict[str, object]]:
    audit = c.answers.audit
    assert isinstance(audit, RecordingAudit)
    return [e for e in audit.events if e["event_type"] == "query"]


def metrics_of(c: Container) -> RecordingMetrics:
    assert isinstance(c.metrics, RecordingMetrics)
    return c.metrics


def finish(asked: Asked) -> Answer:
    done = [e.answer for e in asked.events() if isinstance(e, Done)]
    assert len(done) == 1
    return done[0]


def asker(principal: Principal = LOCAL_ADMIN, intent: str = "answer") -> Asker:
    return Asker(principal, "cli", intent)


@pytest.fixture
def c(container: Container) -> Container:
    return library(container)


@pytest.fixture
def namespace() -> Iterator[str]:
    """A key namespace of this test on the shared Redis, removed after."""
    if not shared_available():
        pytest.skip("Redis on 127.0.0.1:6379 not running")
    ns = unique_namespace()
    yield ns
    client = redis.Redis.from_url(SHARED_URL, decode_responses=True)
    keys = list(client.scan_iter(match=f"{ns}:*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def cached(make_container: Callable[..., Container], namespace: str) -> Container:
    return library(make_container(redis={"url": SHARED_URL, "namespace": namespace}))


def test_an_answer_streams_and_is_audited_and_measured_once(c: Container) -> None:
    asked = c.ask.ask(Question(PUMP), asker())
    events = list(asked.events())
    assert isinstance(events[0], Token) and isinstance(events[-1], Done)
    answer = events[-1].answer
    assert "1450 rpm" in answer.text and [x.title for x in answer.citations] == ["pump.txt"]
    [event] = audit_of(c)
    assert event["user_id"] == LOCAL_ADMIN.user_id
    m = metrics_of(c)
    assert m.value(COUNT, intent="answer", component="cli") == 1
    assert [k for k, _ in m.observations[LATENCY]] == [(("generate", "true"), ("mode", "hybrid"))]
    assert len(m.observations["xoe_relevance_score"]) == 1
    assert m.value("xoe_recall_rate") == 1 and m.value("xoe_response_quality_score") == 1
    assert c.generation.depth == 0


def test_complete_reports_once_and_frees_the_queue(c: Container) -> None:
    answer = c.ask.ask(Question(PUMP, mode=SearchMode.LEXICAL), asker()).complete()
    assert "1450 rpm" in answer.text
    m = metrics_of(c)
    assert m.value(COUNT, intent="answer", component="cli") == 1
    assert [k for k, _ in m.observations[LATENCY]] == [(("generate", "true"), ("mode", "lexical"))]
    assert len(audit_of(c)) == 1 and c.generation.depth == 0


def test_answers_stay_within_what_the_asker_may_read(c: Container) -> None:
    hidden = finish(c.ask.ask(Question(MERGER), asker(VIEWER)))
    assert "zeppelin" not in hidden.text.lower()
    assert all(x.title != "merger.txt" for x in hidden.citations)
    seen = finish(c.ask.ask(Question(MERGER), asker(ALICE)))
    assert [x.title for x in seen.citations] == ["merger.txt"]
    sources = c.ask.sources(Question(MERGER, mode=SearchMode.LEXICAL), asker(VIEWER))
    assert all(x.title != "merger.txt" for x in sources.citations)
    assert [e["user_id"] for e in audit_of(c)] == ["u-victor", "u-alice", "u-victor"]


def test_sources_need_no_model_and_count_as_retrieval(c: Container) -> None:
    held = [c.generation.admit() for _ in range(c.generation.capacity)]
    try:
        answer = c.ask.sources(Question(PUMP, mode=SearchMode.DENSE), asker(intent="retrieval"))
    finally:
        for admission in held:
            admission.release()
    assert answer.text == "" and answer.citations[0].title == "pump.txt"
    assert answer.generation_ms == 0.0 and answer.grounded
    m = metrics_of(c)
    assert m.value(COUNT, intent="retrieval", component="cli") == 1
    assert [k for k, _ in m.observations[LATENCY]] == [(("generate", "false"), ("mode", "dense"))]
    assert len(audit_of(c)) == 1


def test_a_full_queue_refuses_before_retrieval(c: Container) -> None:
    held = [c.generation.admit() for _ in range(c.generation.capacity)]
    try:
        with pytest.raises(QueueFullError):
            c.ask.ask(Question(PUMP), asker())
    finally:
        for admission in held:
            admission.release()
    assert audit_of(c) == [] and metrics_of(c).value(COUNT, intent="answer", component="cli") == 0
    assert c.generation.depth == 0
    assert "1450 rpm" in finish(c.ask.ask(Question(PUMP), asker())).text


def test_an_open_breaker_refuses_at_once(c: Container) -> None:
    trip(c)
    with pytest.raises(CircuitOpenError) as refused:
        c.ask.ask(Question(PUMP), asker())
    assert refused.value.retry_after > 0
    with pytest.raises(CircuitOpenError):
        c.ask.converse(Question("hello"), asker(intent="chat"))
    assert audit_of(c) == [] and c.generation.depth == 0


def trip(c: Container) -> None:
    """Open the model's breaker with as many failures as it tolerates."""
    for _ in range(c.breaker.fail_max):
        c.breaker.failure(c.breaker.acquire())


def test_a_cached_answer_needs_neither_queue_nor_model(cached: Container) -> None:
    first = finish(cached.ask.ask(Question(PUMP), asker()))
    assert not first.usage.get("cache_hit")
    held = [cached.generation.admit() for _ in range(cached.generation.capacity)]
    trip(cached)
    try:
        again = cached.ask.ask(Question(PUMP.upper()), asker()).complete()
    finally:
        for admission in held:
            admission.release()
    assert again.usage.get("cache_hit") and again.text == first.text
    events = audit_of(cached)
    assert len(events) == 2 and events[1]["details"]["cache"] == "hit"  # type: ignore[index]
    assert metrics_of(cached).value(COUNT, intent="answer", component="cli") == 2
    assert metrics_of(cached).value("xoe_cache_requests_total", result="hit") == 1


def test_a_cached_answer_stays_within_its_scope(cached: Container) -> None:
    finish(cached.ask.ask(Question(MERGER), asker(ALICE)))
    other = finish(cached.ask.ask(Question(MERGER), asker(VIEWER)))
    assert not other.usage.get("cache_hit") and "zeppelin" not in other.text.lower()


def test_conversing_uses_the_model_alone_and_has_no_recall(c: Container) -> None:
    history = (ChatMessage("user", "Hi"), ChatMessage("assistant", "Hello."))
    asked = c.ask.converse(Question("How are you?", history=history), asker(intent="chat"))
    assert c.generation.depth == 1 and asked.citations == ()
    answer = finish(asked)
    assert answer.citations == () and not answer.grounded and answer.text
    messages = asked.prepared.messages
    assert messages[0] == ChatMessage("system", PLAIN_PROMPT) and messages[1:3] == history
    assert "<source" not in messages[-1].content
    m = metrics_of(c)
    assert m.value(COUNT, intent="chat", component="cli") == 1
    assert [k for k, _ in m.observations[LATENCY]] == [(("generate", "true"), ("mode", "none"))]
    assert "xoe_recall_rate" not in m.gauges and "xoe_relevance_score" not in m.observations
    assert audit_of(c) == [] and c.generation.depth == 0


def test_closing_a_stream_early_frees_its_place_and_reports_nothing(c: Container) -> None:
    events = c.ask.ask(Question(PUMP), asker()).events()
    assert isinstance(next(events), Token)
    assert c.generation.depth == 1
    close = getattr(events, "close", None)
    assert callable(close)
    close()
    assert c.generation.depth == 0
    assert metrics_of(c).value(COUNT, intent="answer", component="cli") == 0


def test_answer_json_rounds_once_for_every_entry_point() -> None:
    cite = Citation(1, "d", "c", "T", "/lib/t.txt", 0, 4, 0.5, "text")
    answer = Answer("It runs.", (cite,), "fake", 12.34567, 89.01234, True, answer_id="a1")
    body = answer_json(answer, 1.234567)
    assert body == {
        "answer_id": "a1",
        "response": "It runs.",
        "sources": [cite.as_dict()],
        "metadata": {
            "processing_time": 1.2346,
            "retrieval_ms": 12.35,
            "generation_ms": 89.01,
            "model": "fake",
            "grounded": True,
        },
    }


def test_questions_and_conversations_are_capped_on_every_path(container: Container) -> None:
    c = library(container)
    asker = Asker(VIEWER, "ui", "chat")
    with pytest.raises(InvalidInputError, match="at most 8000"):
        c.ask.ask(Question("q" * (MAX_QUESTION_CHARS + 1)), asker)
    with pytest.raises(InvalidInputError, match="at most 8000"):
        c.ask.converse(Question("q" * (MAX_QUESTION_CHARS + 1)), asker)
    turns = tuple(ChatMessage("user", "earlier") for _ in range(MAX_MESSAGES + 1))
    with pytest.raises(InvalidInputError, match="messages"):
        c.ask.ask(Question(PUMP, history=turns), asker)
    long_turns = tuple(ChatMessage("user", "w" * MAX_QUESTION_CHARS) for _ in range(9))
    with pytest.raises(InvalidInputError, match="characters"):
        c.ask.ask(Question(PUMP, history=long_turns), asker)
    with pytest.raises(InvalidInputError, match="at most 8000"):
        c.ask.sources(Question("q" * (MAX_QUESTION_CHARS + 1)), asker)
    assert c.ask.ask(Question(PUMP), asker).complete().text


def test_titles_and_collection_descriptions_are_capped(container: Container) -> None:
    text = "Body of a note with a very long first line."
    data = text.encode()
    long_title = "T" * 100_000
    container.kb.ingest(
        [
            Source(
                "/lib/long.md",
                sha256_bytes(data),
                len(data),
                long_title,
                text,
                "text/plain",
                "t",
                "1",
            )
        ],
        user="tester",
    )
    (doc,) = [d for d in container.kb.snapshot.documents.values() if d.source == "/lib/long.md"]
    assert len(doc.title) == MAX_TITLE_CHARS and doc.title.startswith("TTT")
    with pytest.raises(InvalidInputError, match="at most 2000"):
        container.access.create("notes", description="d" * 2001)
    with pytest.raises(InvalidInputError) as refused:
        container.access.create("n" * 100_000)
    assert len(str(refused.value)) < 400
