"""Retries, deadlines, the generation queue and the guarded chat model."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.clock import FakeClock
from tests.services.test_breaker import trip
from xnai.adapters.llm.openai_http import OpenAIChatModel
from xnai.adapters.memory.llm import FakeChatModel
from xnai.adapters.memory.metrics import RecordingMetrics
from xnai.domain.errors import (
    CircuitOpenError,
    ModelError,
    ModelServerError,
    ModelTimeoutError,
    ModelUnavailableError,
    QueueFullError,
)
from xnai.domain.models import ChatMessage
from xnai.services.breaker import BreakerState, CircuitBreaker, is_transient
from xnai.services.generation import GenerationLimiter
from xnai.services.resilience import DeadlineStream, GuardedChatModel, RetryPolicy

ASK = [ChatMessage("user", 'Sources:\n[1] "The pump runs at 1450 rpm."\n[2] "Pumps are loud."')]
REPLY = "The pump runs at 1450 rpm. [1]"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1000.0)


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker("fake", fail_max=3, reset_timeout=60, clock=clock)


# --- retry policy ----------------------------------------------------------------------


class Flaky:
    """Raises the given errors in turn, then answers."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "answer"


def policy(attempts: int = 3, sleeps: list[float] | None = None) -> RetryPolicy:
    waits = sleeps if sleeps is not None else []
    return RetryPolicy(attempts=attempts, backoff_s=0.5, max_backoff_s=8, sleep=waits.append)


@pytest.mark.parametrize(
    "error",
    [
        ModelUnavailableError("connection refused"),
        ModelTimeoutError("too slow"),
        ModelServerError("HTTP 500"),
    ],
)
def test_transient_failures_are_retried(error: Exception) -> None:
    flaky = Flaky(error)
    assert policy().call(flaky) == "answer"
    assert flaky.calls == 2


@pytest.mark.parametrize(
    "error",
    [ModelError("HTTP 400"), ModelError("invalid JSON"), CircuitOpenError(30), ValueError("x")],
)
def test_other_failures_are_never_retried(error: Exception) -> None:
    flaky = Flaky(error)
    with pytest.raises(type(error)):
        policy().call(flaky)
    assert flaky.calls == 1
    assert not is_transient(error)


def test_attempts_are_bounded_and_backoff_grows_with_jitter() -> None:
    sleeps: list[float] = []
    flaky = Flaky(*(ModelUnavailableError("down") for _ in range(10)))
    with pytest.raises(ModelUnavailableError):
        policy(attempts=4, sleeps=sleeps).call(flaky)
    assert flaky.calls == 4
    assert len(sleeps) == 3
    for n, wait in enumerate(sleeps):
        base = 0.5 * 2**n
        assert base <= wait <= base + 0.5, sleeps


# --- deadline --------------------------------------------------------------------------


def test_deadline_stream_times_out_a_hung_backend() -> None:
    release = threading.Event()

    def hung() -> Iterator[str]:
        release.wait(10)
        yield "late"

    started = time.perf_counter()
    call = DeadlineStream(hung, 0.2)
    with pytest.raises(ModelTimeoutError, match="0.2 s"):
        call.next()
    assert 0.15 < time.perf_counter() - started < 1.0
    release.set()


def test_deadline_stream_runs_off_the_callers_thread() -> None:
    seen: list[str] = []

    def where() -> Iterator[str]:
        seen.append(threading.current_thread().name)
        yield "x"

    call = DeadlineStream(where, 5)
    assert call.next() == "x"
    assert call.next() is None
    assert seen == ["xnai-model-call"]
    assert call.finished is not None


# --- guarded chat model ----------------------------------------------------------------


def guarded(
    model: object,
    breaker: CircuitBreaker,
    *,
    attempts: int = 2,
    deadline_s: float = 5.0,
    concurrent: int = 4,
    metrics: RecordingMetrics | None = None,
) -> GuardedChatModel:
    limiter = GenerationLimiter(concurrent, 8, precheck=breaker.check, metrics=metrics)
    return GuardedChatModel(
        model,  # type: ignore[arg-type]
        breaker=breaker,
        limiter=limiter,
        deadline_s=deadline_s,
        retry=RetryPolicy(attempts=attempts, backoff_s=0.0, sleep=lambda _: None),
        metrics=metrics,
    )


def answer(model: GuardedChatModel) -> str:
    return "".join(model.stream(ASK, max_tokens=64))


def faults(tmp_path: Path, mode: str) -> FakeChatModel:
    (tmp_path / "fault").write_text(mode)
    return FakeChatModel(fault_file=tmp_path / "fault")


def test_guarded_model_answers_like_the_model(breaker: CircuitBreaker) -> None:
    model = guarded(FakeChatModel(name="fake-1", context_size=1024), breaker)
    assert answer(model) == REPLY
    assert (model.name, model.context_size, model.count_tokens("a b c")) == ("fake-1", 1024, 5)


def test_a_transient_failure_is_retried_and_the_answer_arrives(breaker: CircuitBreaker) -> None:
    fake = FakeChatModel(fail_times=1)
    assert answer(guarded(fake, breaker)) == REPLY
    assert len(fake.calls) == 2
    assert breaker.failures == 0


def test_each_failed_call_counts_and_an_open_breaker_stops_retries(
    breaker: CircuitBreaker, tmp_path: Path
) -> None:
    fake = faults(tmp_path, "fail")
    model = guarded(fake, breaker, attempts=2)
    with pytest.raises(ModelUnavailableError, match="injected fault"):
        answer(model)
    assert fake.faults is not None and fake.faults.calls() == 2
    # The third failure opens the breaker: the retry that follows is not made.
    with pytest.raises(CircuitOpenError):
        answer(model)
    assert fake.faults.calls() == 3
    with pytest.raises(CircuitOpenError):
        answer(model)
    assert fake.faults.calls() == 3


def test_a_rejected_request_is_not_retried(breaker: CircuitBreaker, tmp_path: Path) -> None:
    fake = faults(tmp_path, "invalid")
    with pytest.raises(ModelError, match="rejected") as info:
        answer(guarded(fake, breaker, attempts=3))
    assert not isinstance(info.value, ModelUnavailableError)
    assert fake.faults is not None and fake.faults.calls() == 1
    assert breaker.state is BreakerState.CLOSED and breaker.failures == 0


def test_a_hung_model_times_out_and_counts_as_a_failure(
    breaker: CircuitBreaker, tmp_path: Path
) -> None:
    fake = faults(tmp_path, "hang")
    metrics = RecordingMetrics()
    model = guarded(fake, breaker, attempts=1, deadline_s=0.2, metrics=metrics)
    started = time.perf_counter()
    with pytest.raises(ModelTimeoutError):
        answer(model)
    assert time.perf_counter() - started < 1.5
    assert breaker.failures == 1
    assert metrics.value("xoe_error_count_total", component="llm", type="timeout") == 1
    (tmp_path / "fault").write_text("ok")  # lets the left-behind thread finish


def test_a_hung_call_does_not_block_other_generations(breaker: CircuitBreaker) -> None:
    release = threading.Event()

    class HangsOnce(FakeChatModel):
        def stream(
            self,
            messages: Sequence[ChatMessage],
            *,
            max_tokens: int,
            temperature: float = 0.0,
            stop: Sequence[str] = (),
        ) -> Iterator[str]:
            if not self.calls:
                self.calls.append(tuple(messages))
                release.wait(10)
            return super().stream(messages, max_tokens=max_tokens)

    model = guarded(HangsOnce(), breaker, attempts=1, deadline_s=10, concurrent=2)
    hung = threading.Thread(target=answer, args=(model,))
    hung.start()
    try:
        time.sleep(0.1)
        started = time.perf_counter()
        assert answer(model) == REPLY
        assert time.perf_counter() - started < 0.5
    finally:
        release.set()
        hung.join(5)


def test_a_failure_mid_stream_is_not_retried_but_counts(breaker: CircuitBreaker) -> None:
    calls: list[int] = []

    class DiesMidway(FakeChatModel):
        def stream(
            self,
            messages: Sequence[ChatMessage],
            *,
            max_tokens: int,
            temperature: float = 0.0,
            stop: Sequence[str] = (),
        ) -> Iterator[str]:
            calls.append(1)
            yield "The"
            yield " pump"
            raise ModelUnavailableError("connection reset")

    received: list[str] = []
    with pytest.raises(ModelUnavailableError, match="reset"):
        for piece in guarded(DiesMidway(), breaker, attempts=3).stream(ASK, max_tokens=9):
            received.append(piece)
    assert received == ["The", " pump"]
    assert calls == [1]
    assert breaker.failures == 1


def test_one_trial_call_in_half_open_under_concurrent_generations(
    breaker: CircuitBreaker, clock: FakeClock, tmp_path: Path
) -> None:
    fake = faults(tmp_path, "fail")
    model = guarded(fake, breaker, attempts=1, concurrent=6)
    for _ in range(3):
        with pytest.raises(ModelUnavailableError):
            answer(model)
    assert breaker.state is BreakerState.OPEN
    (tmp_path / "fault").write_text("slow 0.3")
    clock.advance(60)

    def attempt() -> str:
        try:
            return answer(model)
        except CircuitOpenError:
            return "refused"

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda _: attempt(), range(6)))
    assert sorted(results) == sorted([REPLY] + ["refused"] * 5)
    assert fake.faults is not None and fake.faults.calls() == 4
    assert breaker.state is BreakerState.CLOSED


def test_a_reader_that_stops_early_frees_the_slot(breaker: CircuitBreaker) -> None:
    model = guarded(FakeChatModel(), breaker, concurrent=1)
    stream = model.stream(ASK, max_tokens=64)
    assert next(stream) == "The"
    stream.close()
    assert model.limiter.depth == 0 and model.limiter.running == 0
    assert answer(model) == REPLY


def test_inference_time_is_observed(breaker: CircuitBreaker) -> None:
    metrics = RecordingMetrics()
    answer(guarded(FakeChatModel(), breaker, metrics=metrics))
    [(labels, seconds)] = metrics.observations["xoe_model_inference_time_seconds"]
    assert dict(labels) == {"backend": "fake"}
    assert 0 <= seconds < 1


# --- the HTTP backend's errors ---------------------------------------------------------


def http_model(status: int) -> OpenAIChatModel:
    def reply(_: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"error": {"message": f"status {status}"}})

    return OpenAIChatModel("http://model.test/v1", "m", transport=httpx.MockTransport(reply))


@pytest.mark.parametrize(("status", "transient"), [(500, True), (503, True), (400, False)])
def test_http_5xx_is_transient_4xx_is_not(status: int, transient: bool) -> None:
    with pytest.raises(ModelError) as info:
        list(http_model(status).stream(ASK, max_tokens=4))
    assert is_transient(info.value) is transient


def test_http_4xx_is_tried_once_and_the_breaker_stays_closed(breaker: CircuitBreaker) -> None:
    requests: list[int] = []

    def reply(_: httpx.Request) -> httpx.Response:
        requests.append(1)
        return httpx.Response(400, json={"error": {"message": "context too long"}})

    backend = OpenAIChatModel("http://m.test/v1", "m", transport=httpx.MockTransport(reply))
    for _ in range(4):
        with pytest.raises(ModelError, match="HTTP 400"):
            answer(guarded(backend, breaker, attempts=3))
    assert requests == [1, 1, 1, 1]
    assert breaker.state is BreakerState.CLOSED


# --- generation limiter ----------------------------------------------------------------


def test_queue_refuses_beyond_its_capacity_and_counts_it() -> None:
    metrics = RecordingMetrics()
    limiter = GenerationLimiter(1, 2, metrics=metrics)
    held = [limiter.admit() for _ in range(3)]
    assert metrics.value("xoe_generation_queue_depth") == 3
    with pytest.raises(QueueFullError) as info:
        limiter.admit()
    assert info.value.retry_after >= 1
    assert metrics.value("xoe_generation_rejected_total") == 1
    assert metrics.value("xoe_error_count_total", component="generation", type="queue_full") == 1
    held[0].release()
    held[0].release()  # idempotent
    assert limiter.depth == 2
    limiter.admit().release()
    assert metrics.value("xoe_generation_queue_depth") == 2


def test_a_request_is_queued_only_while_its_expected_wait_fits() -> None:
    """Two slots, 2 s an answer, at most 5 s of waiting: requests 1-2 start at once, 3-4
    wait one round (2 s), 5-6 two rounds (4 s); the seventh would wait 6 s and is refused
    with that estimate, though the queue still has places."""
    limiter = GenerationLimiter(2, 10, max_wait_s=5.0, initial_estimate_s=2.0)
    waits = []
    held = []
    for _ in range(6):
        waits.append(limiter.expected_wait_s())
        held.append(limiter.admit())
    assert waits == [0, 0, 2, 2, 4, 4]
    with pytest.raises(QueueFullError) as info:
        limiter.admit()
    assert info.value.retry_after == 6
    held.pop().release()
    held.pop().release()  # two fewer ahead: the next one waits 4 s and is queued
    held.append(limiter.admit())
    assert limiter.depth == 5


def test_retry_after_follows_the_measured_answer_time() -> None:
    """A full queue's Retry-After is the estimate from the answers' real durations, not a
    fixed number: slow answers make it longer."""
    limiter = GenerationLimiter(1, 9, initial_estimate_s=0.01)

    def refused_after() -> int:
        held = [limiter.admit() for _ in range(10)]
        try:
            with pytest.raises(QueueFullError) as info:
                limiter.admit()
        finally:
            for admission in held:
                admission.release()
        return info.value.retry_after

    assert refused_after() == 1  # ten rounds of 0.01 s
    for _ in range(8):  # answers of 0.3 s pull the running average towards 0.3 s
        with limiter.generation() as slot:
            slot.ensure()
            time.sleep(0.3)
    assert refused_after() >= 3  # ten rounds of at least ~0.29 s


def test_an_open_breaker_is_refused_before_the_queue(breaker: CircuitBreaker) -> None:
    limiter = GenerationLimiter(1, 0, precheck=breaker.check)
    trip(breaker)
    with pytest.raises(CircuitOpenError):
        limiter.admit()
    assert limiter.depth == 0


def test_only_max_concurrent_generations_run_at_once(breaker: CircuitBreaker) -> None:
    active: list[int] = []
    peak: list[int] = []
    lock = threading.Lock()

    class Counting(FakeChatModel):
        def stream(
            self,
            messages: Sequence[ChatMessage],
            *,
            max_tokens: int,
            temperature: float = 0.0,
            stop: Sequence[str] = (),
        ) -> Iterator[str]:
            with lock:
                active.append(1)
                peak.append(len(active))
            time.sleep(0.05)
            with lock:
                active.pop()
            yield "done"

    model = guarded(Counting(), breaker, concurrent=2)
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda _: answer(model), range(6)))
    assert results == ["done"] * 6
    assert max(peak) == 2


def test_an_admitted_request_is_not_admitted_twice(breaker: CircuitBreaker) -> None:
    model = guarded(FakeChatModel(), breaker, concurrent=1)
    model.limiter.queue_size = 0
    admission = model.limiter.admit()
    with pytest.raises(QueueFullError):
        answer(model)  # a request that was not admitted finds no room
    assert "".join(admission.bind(model.stream(ASK, max_tokens=64))) == REPLY
    assert model.limiter.depth == 0
    again = model.limiter.admit()
    assert again.run(answer, model) == REPLY
    assert model.limiter.depth == 0


def test_a_dropped_stream_gives_its_place_back(breaker: CircuitBreaker) -> None:
    model = guarded(FakeChatModel(), breaker, concurrent=1)
    admission = model.limiter.admit()
    bound = admission.bind(model.stream(ASK, max_tokens=64))
    assert next(bound) == "The"
    del bound
    assert model.limiter.depth == 0 and model.limiter.running == 0


def test_fault_file_modes_switch_at_run_time(tmp_path: Path) -> None:
    fake = faults(tmp_path, "fail")
    ask: Callable[[], str] = lambda: "".join(fake.stream(ASK, max_tokens=64))  # noqa: E731
    with pytest.raises(ModelUnavailableError):
        ask()
    (tmp_path / "fault").write_text("slow 0.1\n")
    started = time.perf_counter()
    assert ask() == REPLY
    assert time.perf_counter() - started >= 0.1
    (tmp_path / "fault").unlink()
    assert ask() == REPLY
    assert fake.faults is not None and fake.faults.calls() == 3
    assert (tmp_path / "fault.calls").read_text().split() == ["fail", "slow", "ok"]


def test_hang_lasts_until_the_fault_file_changes(tmp_path: Path) -> None:
    fake = faults(tmp_path, "hang")
    result: list[str] = []
    thread = threading.Thread(target=lambda: result.append(answer_raw(fake)))
    thread.start()
    time.sleep(0.2)
    assert thread.is_alive() and result == []
    (tmp_path / "fault").write_text("ok")
    thread.join(2)
    assert result == [REPLY]


def answer_raw(model: FakeChatModel) -> str:
    return "".join(model.stream(ASK, max_tokens=64))


# --- the half-open trial and the queue ---------------------------------------------------


def half_open(model: GuardedChatModel, clock: FakeClock, tmp_path: Path, mode: str) -> None:
    """Three failed answers open the breaker; the reset timeout passes; the model does ``mode``."""
    (tmp_path / "fault").write_text("fail")
    for _ in range(3):
        with pytest.raises(ModelUnavailableError):
            answer(model)
    (tmp_path / "fault").write_text(mode)
    clock.advance(60)
    assert model.breaker.state is BreakerState.HALF_OPEN


def test_half_open_a_caller_queued_behind_the_trial_is_refused_at_once(
    breaker: CircuitBreaker, clock: FakeClock, tmp_path: Path
) -> None:
    model = guarded(faults(tmp_path, "fail"), breaker, attempts=1, concurrent=1)
    half_open(model, clock, tmp_path, "ok")
    trial = model.limiter.admit()  # the first caller, still retrieving its sources
    started = time.perf_counter()
    with pytest.raises(CircuitOpenError) as info:
        model.limiter.admit()  # queued behind the trial, it would wait for its outcome
    assert time.perf_counter() - started < 0.5
    assert info.value.retry_after == 1
    assert model.limiter.depth == 1
    assert trial.run(answer, model) == REPLY
    assert breaker.state is BreakerState.CLOSED
    assert answer(model) == REPLY and model.limiter.depth == 0


def test_half_open_with_one_slot_only_the_trial_is_served_under_concurrent_callers(
    breaker: CircuitBreaker, clock: FakeClock, tmp_path: Path
) -> None:
    fake = faults(tmp_path, "fail")
    model = guarded(fake, breaker, attempts=1, concurrent=1)
    half_open(model, clock, tmp_path, "slow 1")
    go = threading.Barrier(6)

    def attempt() -> tuple[str, float]:
        go.wait(5)
        started = time.perf_counter()
        try:
            return answer(model), time.perf_counter() - started
        except CircuitOpenError:
            return "refused", time.perf_counter() - started

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda _: attempt(), range(6)))
    assert sorted(r for r, _ in results) == sorted([REPLY] + ["refused"] * 5)
    # Refused at once: none waited for the trial's second.
    assert all(seconds < 0.8 for r, seconds in results if r == "refused")
    assert fake.faults is not None and fake.faults.calls() == 4
    assert breaker.state is BreakerState.CLOSED and model.limiter.depth == 0


def test_a_reserved_trial_not_used_is_given_back_with_the_admission(
    breaker: CircuitBreaker, clock: FakeClock, tmp_path: Path
) -> None:
    model = guarded(faults(tmp_path, "fail"), breaker, attempts=1, concurrent=1)
    half_open(model, clock, tmp_path, "ok")
    model.limiter.admit().release()  # admitted, then answered without the model
    assert breaker.state is BreakerState.HALF_OPEN
    assert answer(model) == REPLY  # the next caller is the trial
    assert breaker.state is BreakerState.CLOSED


def test_a_failed_reserved_trial_reopens_and_its_retry_is_not_made(
    breaker: CircuitBreaker, clock: FakeClock, tmp_path: Path
) -> None:
    fake = faults(tmp_path, "fail")
    model = guarded(fake, breaker, attempts=3, concurrent=1)
    model.retry = RetryPolicy(attempts=1, backoff_s=0.0, sleep=lambda _: None)
    half_open(model, clock, tmp_path, "fail")
    model.retry = RetryPolicy(attempts=3, backoff_s=0.0, sleep=lambda _: None)
    with pytest.raises(CircuitOpenError):
        answer(model)  # the trial fails, the breaker opens again, the retry is refused
    assert fake.faults is not None and fake.faults.calls() == 4
    assert breaker.state is BreakerState.OPEN and model.limiter.depth == 0


def test_a_caller_refused_for_a_full_queue_gives_the_trial_back(
    breaker: CircuitBreaker, clock: FakeClock, tmp_path: Path
) -> None:
    model = guarded(faults(tmp_path, "fail"), breaker, attempts=1, concurrent=1)
    model.limiter.queue_size = 1
    for _ in range(2):
        with pytest.raises(ModelUnavailableError):
            answer(model)
    failing, waiting = model.limiter.admit(), model.limiter.admit()  # admitted while closed
    with pytest.raises(ModelUnavailableError):
        failing.run(answer, model)  # the third failure opens the breaker
    (tmp_path / "fault").write_text("ok")
    clock.advance(60)
    model.limiter.queue_size = 0  # the waiting caller fills the queue
    with pytest.raises(QueueFullError):
        model.limiter.admit()
    assert breaker.state is BreakerState.HALF_OPEN
    waiting.release()
    assert answer(model) == REPLY and breaker.state is BreakerState.CLOSED
