"""Circuit breaker transitions with a fake clock: closed, open, one trial in half-open."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.clock import FakeClock
from xnai.adapters.memory.metrics import RecordingMetrics
from xnai.domain.errors import CircuitOpenError, ModelError, ModelUnavailableError
from xnai.services.breaker import BreakerState, CircuitBreaker


def fail() -> None:
    raise ModelUnavailableError("down")


def ok() -> str:
    return "ok"


def trip(breaker: CircuitBreaker, times: int = 3) -> None:
    """``times`` failed calls through ``breaker``."""
    for _ in range(times):
        with pytest.raises(ModelUnavailableError):
            breaker.call(fail)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1000.0)


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker("fake", fail_max=3, reset_timeout=60, clock=clock)


def test_two_failures_keep_it_closed_the_third_opens(breaker: CircuitBreaker) -> None:
    trip(breaker, 2)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.failures == 2
    trip(breaker, 1)
    assert breaker.state is BreakerState.OPEN


def test_open_breaker_fails_fast_without_calling(breaker: CircuitBreaker) -> None:
    trip(breaker)
    calls: list[int] = []
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(lambda: calls.append(1))
    assert calls == []
    assert info.value.retry_after == 60
    assert str(info.value) == "AI service temporarily unavailable"


def test_a_success_resets_the_count_of_consecutive_failures(breaker: CircuitBreaker) -> None:
    trip(breaker, 2)
    assert breaker.call(ok) == "ok"
    trip(breaker, 2)
    assert breaker.state is BreakerState.CLOSED


def test_a_rejected_request_is_not_a_backend_failure(breaker: CircuitBreaker) -> None:
    def rejected() -> None:
        raise ModelError("HTTP 400: bad request")

    trip(breaker, 2)
    with pytest.raises(ModelError):
        breaker.call(rejected)
    assert breaker.failures == 0
    trip(breaker, 2)
    assert breaker.state is BreakerState.CLOSED


def test_an_unexpected_crash_is_a_failure(breaker: CircuitBreaker) -> None:
    def crash() -> None:
        raise RuntimeError("segfault-ish")

    for _ in range(3):
        with pytest.raises(RuntimeError):
            breaker.call(crash)
    assert breaker.state is BreakerState.OPEN


def test_half_open_exactly_after_the_reset_timeout(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    trip(breaker)
    clock.advance(59.5)
    assert breaker.state is BreakerState.OPEN
    assert breaker.retry_after() == 1
    clock.advance(0.5)
    assert breaker.state is BreakerState.HALF_OPEN


def test_retry_after_counts_down_and_is_at_least_one(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    trip(breaker)
    assert breaker.retry_after() == 60
    clock.advance(20.2)
    assert breaker.retry_after() == 40
    clock.advance(39.7)
    assert breaker.retry_after() == 1


def test_one_trial_in_half_open_others_fail_fast(breaker: CircuitBreaker, clock: FakeClock) -> None:
    trip(breaker)
    clock.advance(60)
    trial = breaker.acquire()
    assert trial.trial
    with pytest.raises(CircuitOpenError) as info:
        breaker.acquire()
    assert info.value.retry_after == 1
    with pytest.raises(CircuitOpenError):
        breaker.check()
    breaker.success(trial)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.call(ok) == "ok"


def test_failed_trial_reopens_with_a_fresh_timer(breaker: CircuitBreaker, clock: FakeClock) -> None:
    trip(breaker)
    clock.advance(65)  # half-open since 5 s; the trial starts late
    trial = breaker.acquire()
    clock.advance(3)
    breaker.failure(trial)
    assert breaker.state is BreakerState.OPEN
    assert breaker.retry_after() == 60
    clock.advance(59.9)
    assert breaker.state is BreakerState.OPEN
    clock.advance(0.1)
    assert breaker.state is BreakerState.HALF_OPEN


def test_an_abandoned_trial_lets_another_caller_try(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    trip(breaker)
    clock.advance(60)
    breaker.release(breaker.acquire())
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.call(ok) == "ok"
    assert breaker.state is BreakerState.CLOSED


def test_outcomes_of_calls_started_before_a_change_are_ignored(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    slow_failing = breaker.acquire()
    slow_succeeding = breaker.acquire()
    trip(breaker)
    clock.advance(30)
    breaker.failure(slow_failing)  # must not restart the timer
    breaker.success(slow_succeeding)  # must not close an open breaker
    assert breaker.state is BreakerState.OPEN
    clock.advance(30)
    assert breaker.state is BreakerState.HALF_OPEN


def test_exactly_one_trial_under_concurrency(breaker: CircuitBreaker, clock: FakeClock) -> None:
    trip(breaker)
    clock.advance(60)
    entered = threading.Event()
    finish = threading.Event()
    calls: list[int] = []

    def trial() -> str:
        calls.append(1)
        entered.set()
        assert finish.wait(5)
        return "ok"

    def attempt() -> str:
        try:
            return breaker.call(trial)
        except CircuitOpenError:
            return "refused"

    with ThreadPoolExecutor(max_workers=12) as pool:
        futures = [pool.submit(attempt) for _ in range(12)]
        assert entered.wait(5)
        time.sleep(0.05)  # let every other caller reach the breaker
        finish.set()
        results = [f.result(timeout=5) for f in futures]
    assert calls == [1]
    assert sorted(results) == ["ok"] + ["refused"] * 11
    assert breaker.state is BreakerState.CLOSED


def test_a_hung_call_does_not_block_other_callers(breaker: CircuitBreaker) -> None:
    release = threading.Event()
    hung = threading.Thread(target=breaker.call, args=(lambda: release.wait(10),))
    hung.start()
    try:
        started = time.perf_counter()
        assert breaker.call(ok) == "ok"
        assert breaker.state is BreakerState.CLOSED
        trip(breaker, 1)
        assert time.perf_counter() - started < 0.5
    finally:
        release.set()
        hung.join(5)


def test_state_changes_are_reported_as_metrics(clock: FakeClock) -> None:
    metrics = RecordingMetrics()
    breaker = CircuitBreaker("openai", reset_timeout=10, clock=clock, metrics=metrics)
    breaker.publish()

    def state() -> float:
        return metrics.value("xoe_circuit_breaker_state", backend="openai")

    assert metrics.gauges["xoe_circuit_breaker_state"]
    assert state() == 0
    trip(breaker)
    assert state() == 1
    with pytest.raises(CircuitOpenError):
        breaker.call(ok)
    assert metrics.value("xoe_error_count_total", component="llm", type="circuit_open") == 1
    clock.advance(10)
    assert breaker.state is BreakerState.HALF_OPEN
    assert state() == 2
    breaker.call(ok)
    assert state() == 0


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(fail_max=0)
    with pytest.raises(ValueError):
        CircuitBreaker(reset_timeout=0)


def test_check_in_half_open_reserves_the_trial_for_the_caller_it_lets_in(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    assert breaker.check() is None  # closed: nothing to reserve
    trip(breaker)
    clock.advance(60)
    reserved = breaker.check()
    assert reserved is not None and reserved.ticket.trial
    with pytest.raises(CircuitOpenError):
        breaker.check()  # refused at once, not after the trial
    with pytest.raises(CircuitOpenError):
        breaker.acquire()
    reserved.release()  # the caller made no call: the trial is free again
    again = breaker.check()
    assert again is not None
    breaker.success(again.ticket)
    again.release()  # after its outcome, a release changes nothing
    assert breaker.state is BreakerState.CLOSED and breaker.check() is None
