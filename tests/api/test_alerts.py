"""GET /v1/admin/alerts, fed by the real query path (fake model with injected faults)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import FAST_HASHER, bearer, seed, token_for
from tests.clock import FakeClock
from xnai.adapters.memory.metrics import RecordingMetrics
from xnai.api.app import create_app
from xnai.bootstrap import Container
from xnai.domain.rbac import Role
from xnai.services.anomaly import (
    ALERTING,
    ERROR_RATE,
    LATENCY_ANSWER,
    LATENCY_RETRIEVAL,
    SERIES,
    AnomalyPolicy,
    AnomalyWatch,
)

POLICY = AnomalyPolicy()
RETRIEVE = {"query": "coolant pump rpm", "generate": False}
ANSWER = {"query": "coolant pump rpm"}


class World:
    def __init__(
        self, c: Container, client: TestClient, clock: FakeClock[float], faults: Path
    ) -> None:
        self.c, self.client, self.clock, self.faults = c, client, clock, faults

    def next_bucket(self) -> None:
        self.clock.now += POLICY.bucket_s

    def alerts(self) -> dict:
        r = self.client.get("/v1/admin/alerts")
        assert r.status_code == 200
        return r.json()

    def series(self) -> dict[str, dict]:
        return {s["series"]: s for s in self.alerts()["series"]}


@pytest.fixture
def world(make_container: Callable[..., Container], tmp_path: Path) -> Iterator[World]:
    faults = tmp_path / "faults"
    c = make_container(models={"fake_fault_file": str(faults), "retry_attempts": 1})
    c.auth.hasher = FAST_HASHER
    seed(c)
    clock = FakeClock(1_700_000_000.0)
    c.anomalies = AnomalyWatch(POLICY, clock=clock)
    c.metrics = RecordingMetrics()
    headers = bearer(token_for(c, "admin"))
    with TestClient(create_app(c, warm=False), headers=headers) as client:
        yield World(c, client, clock, faults)


def test_every_series_is_listed_with_its_state_and_the_policy(world: World) -> None:
    body = world.alerts()
    assert body["alerting"] == [] and body["history"] == []
    assert [s["series"] for s in body["series"]] == list(SERIES)
    for s in body["series"]:
        assert s["state"] == "ok" and s["threshold"] == POLICY.threshold and s["samples"] == 0
    assert body["policy"]["window"] == POLICY.window
    assert "median" in body["policy"]["method"]


def test_a_viewer_may_read_alerts(world: World) -> None:
    viewer = bearer(token_for(world.c, "watcher", Role.VIEWER))
    assert world.client.get("/v1/admin/alerts", headers=viewer).status_code == 200
    assert world.client.get("/v1/admin/alerts", headers={"Authorization": ""}).status_code == 401


def test_queries_feed_latency_and_error_rate_and_4xx_are_not_counted(world: World) -> None:
    post = world.client.post
    assert post("/v1/query", json=RETRIEVE).status_code == 200
    assert post("/v1/query", json=ANSWER).status_code == 200
    r = post("/v1/query", json={**ANSWER, "stream": True})
    assert r.status_code == 200 and "event: done" in r.text
    assert post("/v1/query", json={"query": ""}).status_code == 422  # the caller's mistake
    assert post("/v1/query", json=ANSWER, headers={"Authorization": ""}).status_code == 401
    world.faults.write_text("fail")
    assert post("/v1/query", json=ANSWER).status_code >= 500
    r = post("/v1/query", json={**ANSWER, "stream": True})
    assert r.status_code == 200 and "event: error" in r.text  # failed after the headers
    world.next_bucket()
    s = world.series()
    assert s[LATENCY_RETRIEVAL]["samples"] == 1 and s[LATENCY_RETRIEVAL]["value"] > 0
    assert s[LATENCY_ANSWER]["samples"] == 1  # the mean of the two answers that succeeded
    assert s[ERROR_RATE]["value"] == pytest.approx(2 / 5)  # 422 and 401 not counted
    metrics = world.c.metrics
    assert isinstance(metrics, RecordingMetrics)
    assert {dict(k)["series"] for k in metrics.gauges["xoe_anomaly_score"]} == set(SERIES)


def test_a_sustained_burst_of_failures_raises_an_alert(world: World) -> None:
    for _ in range(POLICY.min_samples):  # a calm baseline
        for _ in range(2):
            assert world.client.post("/v1/query", json=RETRIEVE).status_code == 200
        world.next_bucket()
    world.faults.write_text("fail")
    for bucket in range(POLICY.persistence):
        world.client.post("/v1/query", json=RETRIEVE)  # retrieval still works
        assert world.client.post("/v1/query", json=ANSWER).status_code >= 500
        world.next_bucket()
        expected = ALERTING if bucket == POLICY.persistence - 1 else "ok"
        assert world.series()[ERROR_RATE]["state"] == expected
    body = world.alerts()
    assert body["alerting"] == [ERROR_RATE]
    [raised] = body["history"]
    assert raised["series"] == ERROR_RATE and raised["state"] == ALERTING
    assert raised["value"] == pytest.approx(0.5) and raised["score"] > POLICY.threshold
    metrics = world.c.metrics
    assert isinstance(metrics, RecordingMetrics)
    assert metrics.value("xoe_anomaly_score", series=ERROR_RATE) > POLICY.threshold
