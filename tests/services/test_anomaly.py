"""The anomaly detector on synthetic series: a step, a spike, a slow drift, an error burst.

Noise is seeded and time comes from a fake clock, so every run sees the same numbers.
"""

from __future__ import annotations

import random

import pytest

from tests.clock import FakeClock
from xnai.adapters.memory.metrics import RecordingMetrics
from xnai.services.anomaly import (
    ALERTING,
    ERROR_RATE,
    LATENCY_ANSWER,
    LATENCY_FLOOR,
    LATENCY_RETRIEVAL,
    OK,
    AnomalyPolicy,
    AnomalyWatch,
    RobustDetector,
)

POLICY = AnomalyPolicy()  # the defaults the service runs with
BUCKET = POLICY.bucket_s


def noisy(rng: random.Random, level: float, n: int, rel_sigma: float = 0.05) -> list[float]:
    """``n`` values around ``level`` with normal noise of ``rel_sigma`` x level."""
    return [rng.gauss(level, rel_sigma * level) for _ in range(n)]


def run(values: list[float]) -> tuple[list[str], list[float]]:
    """Feed one value per bucket; the state and score after each."""
    d = RobustDetector(LATENCY_RETRIEVAL, POLICY, LATENCY_FLOOR)
    states, scores = [], []
    for i, value in enumerate(values):
        d.update(value, i * BUCKET)
        states.append(d.status.state)
        scores.append(d.status.score)
    return states, scores


def alert_runs(states: list[str]) -> list[tuple[int, int]]:
    """(first, last) bucket index of each stretch of alerting."""
    runs: list[tuple[int, int]] = []
    start = None
    for i, s in enumerate([*states, OK]):
        if s == ALERTING and start is None:
            start = i
        elif s != ALERTING and start is not None:
            runs.append((start, i - 1))
            start = None
    return runs


def test_a_step_alerts_after_persistence_stays_while_shifted_then_becomes_normal() -> None:
    rng = random.Random(1)
    step_at = 120
    values = noisy(rng, 0.100, step_at) + noisy(rng, 0.200, 150)
    states, scores = run(values)
    assert ALERTING not in states[:step_at]
    # Raised on the third shifted bucket (persistence 3), exactly.
    assert states[step_at + POLICY.persistence - 2] == OK
    assert states[step_at + POLICY.persistence - 1] == ALERTING
    # One stretch: it stays up for minutes while the shift lasts, then the new level is
    # the window's majority and the alert clears for good (the detector adapts).
    [(first, last)] = alert_runs(states)
    assert first == step_at + POLICY.persistence - 1
    held = last - first + 1
    assert 20 <= held <= POLICY.window * 2 // 3
    assert states[-1] == OK
    assert all(abs(s) < POLICY.threshold for s in scores[-40:])


def test_a_step_down_never_alerts() -> None:
    rng = random.Random(2)
    states, scores = run(noisy(rng, 0.200, 100) + noisy(rng, 0.100, 100))
    assert ALERTING not in states
    assert min(scores) < -POLICY.threshold  # seen as a large change, but a good one


def test_a_single_spike_scores_high_but_raises_no_alert() -> None:
    rng = random.Random(3)
    values = noisy(rng, 0.100, 150)
    values[100] = 1.0  # one bucket ten times slower
    states, scores = run(values)
    assert scores[100] > 10 * POLICY.threshold  # visible in xoe_anomaly_score
    assert ALERTING not in states
    # The median does not move: the next bucket scores as normal again.
    assert abs(scores[101]) < POLICY.threshold


def test_spikes_shorter_than_persistence_raise_no_alert_but_a_longer_one_does() -> None:
    rng = random.Random(4)
    short = noisy(rng, 0.100, 150)
    short[100:102] = [0.5, 0.5]  # two buckets
    assert ALERTING not in run(short)[0]
    longer = noisy(rng, 0.100, 150)
    longer[100:103] = [0.5, 0.5, 0.5]  # three buckets: persistence reached
    states, _ = run(longer)
    assert alert_runs(states)[0][0] == 102
    assert states[-1] == OK  # cleared three buckets after it ended


def test_a_slow_drift_is_absorbed_without_a_false_alarm() -> None:
    rng = random.Random(5)
    n = 600  # latency doubles over 100 minutes of 10 s buckets
    values = [rng.gauss(0.1 + 0.1 * i / n, 0.005) for i in range(n)]
    states, scores = run(values)
    assert ALERTING not in states
    assert max(scores) < POLICY.threshold


def test_the_same_rise_over_a_few_buckets_is_a_step_and_alerts() -> None:
    rng = random.Random(5)
    ramp = [0.1 + 0.1 * i / 5 for i in range(5)]
    values = noisy(rng, 0.1, 100) + ramp + noisy(rng, 0.2, 60)
    states, _ = run(values)
    assert ALERTING in states


def test_no_score_before_the_window_holds_min_samples() -> None:
    values = [0.1] * (POLICY.min_samples - 1) + [5.0]
    states, scores = run(values)
    assert scores == [0.0] * POLICY.min_samples
    assert ALERTING not in states


def test_an_error_burst_alerts_and_clears_and_leaves_latency_alone() -> None:
    rng = random.Random(6)
    clock = FakeClock(1_700_000_000.0)
    watch = AnomalyWatch(clock=clock)
    burst = range(60, 70)  # ten buckets (100 s) where half the queries fail
    raised_at = cleared_at = None
    for bucket in range(110):
        p_error = 0.5 if bucket in burst else 0.01
        for q in range(20):
            clock.now = 1_700_000_000.0 + bucket * BUCKET + q * 0.4
            watch.observe_query(
                rng.gauss(0.05, 0.002), error=rng.random() < p_error, generate=False
            )
        clock.now = 1_700_000_000.0 + (bucket + 1) * BUCKET  # the bucket ends
        states = {s.series: s for s in watch.status()}
        if states[ERROR_RATE].state == ALERTING and raised_at is None:
            raised_at = bucket
        if raised_at is not None and cleared_at is None and states[ERROR_RATE].state == OK:
            cleared_at = bucket
        assert states[LATENCY_RETRIEVAL].state == OK
    assert raised_at == burst.start + POLICY.persistence - 1
    assert cleared_at == burst.stop + POLICY.persistence - 1
    events = watch.history()
    assert [(e["series"], e["state"]) for e in events] == [
        (ERROR_RATE, ALERTING),
        (ERROR_RATE, OK),
    ]
    assert events[0]["value"] >= 0.3 and events[0]["score"] > POLICY.threshold


def test_buckets_close_when_the_clock_passes_them_and_idle_ones_are_skipped() -> None:
    clock = FakeClock(1_000_000.0)  # a multiple of the bucket length: bucket starts here
    watch = AnomalyWatch(clock=clock)
    watch.observe_query(0.2, error=False, generate=True)
    watch.observe_query(0.4, error=False, generate=True)
    watch.observe_query(9.0, error=True, generate=True)  # a failure: no latency sample
    clock.now += BUCKET - 0.001
    assert all(s.samples == 0 for s in watch.status())  # still the same bucket
    clock.now += 3600  # an idle hour
    states = {s.series: s for s in watch.status()}
    answer, errors = states[LATENCY_ANSWER], states[ERROR_RATE]
    assert answer.samples == 1 and answer.value == pytest.approx(0.3)
    assert errors.samples == 1 and errors.value == pytest.approx(1 / 3)
    assert states[LATENCY_RETRIEVAL].samples == 0
    assert answer.as_dict()["since"] == "1970-01-12T13:46:50+00:00"  # the bucket's end
    watch.observe_query(0.1, error=False, generate=False)
    clock.now += BUCKET
    states = {s.series: s for s in watch.status()}
    assert states[LATENCY_ANSWER].samples == 1  # the idle hour added nothing
    assert states[LATENCY_RETRIEVAL].samples == 1


def test_publish_sets_the_anomaly_score_gauge_per_series() -> None:
    clock = FakeClock(1_700_000_000.0)
    watch = AnomalyWatch(clock=clock)
    for bucket in range(POLICY.min_samples + 1):
        latency = 0.05 if bucket < POLICY.min_samples else 0.5
        watch.observe_query(latency, error=False, generate=False)
        clock.now += BUCKET
    metrics = RecordingMetrics()
    watch.publish(metrics)
    score = metrics.value("xoe_anomaly_score", series=LATENCY_RETRIEVAL)
    assert score > POLICY.threshold
    assert metrics.value("xoe_anomaly_score", series=ERROR_RATE) == 0.0
    assert set(dict(k)["series"] for k in metrics.gauges["xoe_anomaly_score"]) == {
        LATENCY_RETRIEVAL,
        LATENCY_ANSWER,
        ERROR_RATE,
    }


def test_a_policy_that_cannot_work_is_refused() -> None:
    with pytest.raises(ValueError):
        AnomalyPolicy(window=10, min_samples=20)
    with pytest.raises(ValueError):
        AnomalyPolicy(bucket_s=0)
