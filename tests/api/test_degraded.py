"""Degraded answers: 503 while the breaker is open, 429 when the generation queue is full,
retrieval and /health unaffected."""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import bearer, token_for
from xnai.adapters.memory.metrics import RecordingMetrics
from xnai.bootstrap import Container
from xnai.services.resilience import BreakerState

QUESTION = "At what rpm does the coolant pump run?"
DOWN = {"error": "AI service temporarily unavailable"}


@pytest.fixture
def fault(tmp_path: Path) -> Path:
    path = tmp_path / "fault"
    path.write_text("ok")
    return path


@pytest.fixture
def container(make_container: Callable[..., Container], fault: Path) -> Iterator[Container]:
    """A fake model switched by ``fault``: one generation at a time, two may wait."""
    c = make_container(
        models={
            "fake_fault_file": str(fault),
            "retry_attempts": 1,
            "max_concurrent_generations": 1,
            "generation_queue": 2,
            "timeout_s": 30,
        },
        enterprise={"circuit_breaker": {"fail_max": 3, "reset_timeout": 60}},
    )
    c.metrics = RecordingMetrics()
    yield c
    fault.write_text("ok")  # frees any call still hanging


def calls(fault: Path) -> int:
    path = fault.with_name(fault.name + ".calls")
    return len(path.read_text().splitlines()) if path.exists() else 0


def open_breaker(client: TestClient, fault: Path) -> None:
    fault.write_text("fail")
    for _ in range(3):
        r = client.post("/v1/query", json={"query": QUESTION})
        assert r.status_code == 503, r.text
        assert "injected fault" in r.json()["error"]  # the model's failure, not the breaker


def assert_degraded(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    retry_after = int(r.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert r.json() == {**DOWN, "retry_after": retry_after}


def test_open_breaker_answers_503_with_retry_after_at_once(
    client: TestClient, seeded: Container, fault: Path
) -> None:
    open_breaker(client, fault)
    assert seeded.breaker.state is BreakerState.OPEN
    before = calls(fault)
    started = time.perf_counter()
    r = client.post("/v1/query", json={"query": QUESTION})
    assert time.perf_counter() - started < 0.5
    assert_degraded(r)
    assert calls(fault) == before
    metrics = seeded.metrics
    assert isinstance(metrics, RecordingMetrics)
    assert metrics.value("xoe_circuit_breaker_state", backend="fake") == 1
    assert metrics.value("xoe_error_count_total", component="llm", type="circuit_open") >= 1


def test_streaming_and_openai_routes_get_a_real_503(client: TestClient, fault: Path) -> None:
    open_breaker(client, fault)
    before = calls(fault)
    with client.stream("POST", "/v1/query", json={"query": QUESTION, "stream": True}) as r:
        r.read()
        assert_degraded(r)
    chat = {"model": "x", "messages": [{"role": "user", "content": QUESTION}]}
    assert_degraded(client.post("/v1/chat/completions", json=chat))
    with client.stream("POST", "/v1/chat/completions", json={**chat, "stream": True}) as r:
        r.read()
        assert_degraded(r)
    assert calls(fault) == before


def test_retrieval_only_keeps_working_while_open(client: TestClient, fault: Path) -> None:
    open_breaker(client, fault)
    r = client.post("/v1/query", json={"query": QUESTION, "generate": False})
    assert r.status_code == 200
    assert r.json()["sources"][0]["source"] == "/library/reactor.md"
    assert r.json()["response"] == ""


def post_in_background(url: str, token: str, body: dict[str, object]) -> threading.Thread:
    def run() -> None:
        httpx.post(f"{url}/v1/query", json=body, headers=bearer(token), timeout=30)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def wait_until(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def saturate(url: str, token: str, c: Container, fault: Path) -> list[threading.Thread]:
    """A model that does not answer (until the fault file says ``ok``) and questions
    enough to fill its slot and queue."""
    fault.write_text("hang")
    capacity = c.generation.capacity
    busy = [post_in_background(url, token, {"query": QUESTION}) for _ in range(capacity)]
    wait_until(lambda: c.generation.depth == capacity and c.generation.running == 1)
    return busy


def test_full_queue_answers_429_with_retry_after(
    live_url: str, seeded: Container, fault: Path
) -> None:
    token = token_for(seeded, "admin")
    busy = saturate(live_url, token, seeded, fault)
    try:
        for body in ({"query": QUESTION}, {"query": QUESTION, "stream": True}):
            r = httpx.post(f"{live_url}/v1/query", json=body, headers=bearer(token), timeout=5)
            assert r.status_code == 429, r.text
            retry_after = int(r.headers["Retry-After"])
            assert retry_after >= 1
            assert r.json()["retry_after"] == retry_after
        chat = {"model": "x", "messages": [{"role": "user", "content": QUESTION}]}
        r = httpx.post(
            f"{live_url}/v1/chat/completions", json=chat, headers=bearer(token), timeout=5
        )
        assert r.status_code == 429
        retrieval = {"query": QUESTION, "generate": False}
        r = httpx.post(f"{live_url}/v1/query", json=retrieval, headers=bearer(token), timeout=5)
        assert r.status_code == 200
        metrics = seeded.metrics
        assert isinstance(metrics, RecordingMetrics)
        assert metrics.value("xoe_generation_rejected_total") == 3
        assert metrics.value("xoe_generation_queue_depth") == 3
    finally:
        fault.write_text("ok")
        for thread in busy:
            thread.join(10)
    wait_until(lambda: seeded.generation.depth == 0)
    r = httpx.post(f"{live_url}/v1/query", json={"query": QUESTION}, headers=bearer(token))
    assert r.status_code == 200


def test_health_stays_fast_while_the_model_is_saturated(
    live_url: str, seeded: Container, fault: Path
) -> None:
    token = token_for(seeded, "admin")
    busy = saturate(live_url, token, seeded, fault)
    extra = [post_in_background(live_url, token, {"query": QUESTION}) for _ in range(4)]
    try:
        times = []
        with httpx.Client(base_url=live_url, timeout=5) as http:
            for _ in range(50):
                started = time.perf_counter()
                r = http.get("/health")
                times.append(time.perf_counter() - started)
                assert r.status_code == 200
        p95 = statistics.quantiles(times, n=20)[-1]
        assert p95 < 0.1, f"/health p95 {p95 * 1000:.1f} ms"
        assert seeded.generation.running == 1
    finally:
        fault.write_text("ok")
        for thread in busy + extra:
            thread.join(10)


def test_sse_stream_after_admission_sends_tokens(client: TestClient, seeded: Container) -> None:
    with client.stream("POST", "/v1/query", json={"query": QUESTION, "stream": True}) as r:
        assert r.status_code == 200
        events = [line for line in r.iter_lines() if line.startswith("data:")]
    done = json.loads(events[-1].removeprefix("data:"))
    assert "1450 rpm" in done["response"]
    assert seeded.generation.depth == 0 and seeded.generation.running == 0
