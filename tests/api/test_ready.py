"""GET /ready: each component (llm, index, database, redis), its health gauge, and the verdict."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from tests.api.conftest import free_port
from xnai.adapters.memory.metrics import RecordingMetrics
from xnai.api.app import create_app
from xnai.bootstrap import Container

GAUGE = "xoe_component_health_status"


def ready(c: Container) -> tuple[int, dict]:
    with TestClient(create_app(c, warm=False)) as tc:
        r = tc.get("/ready")
    return r.status_code, r.json()


@pytest.fixture
def warm(container: Container) -> Container:
    """A loaded container that reports into an in-memory recorder."""
    container.metrics = RecordingMetrics()
    container.startup.warm_up()
    return container


def health(c: Container, component: str) -> float:
    assert isinstance(c.metrics, RecordingMetrics)
    return c.metrics.gauges[GAUGE][(("component", component),)]


def test_every_component_is_reported_and_feeds_the_health_gauge(warm: Container) -> None:
    code, body = ready(warm)
    assert code == 200 and body["status"] == "ready"
    parts = body["components"]
    assert set(parts) == {"llm", "index", "database", "redis"}
    assert parts["llm"]["status"] == "ok" and parts["llm"]["ready"] is True
    assert parts["llm"]["breaker"] == "closed"
    assert parts["index"] == {"status": "ok", "ready": True, "generation": 0}
    assert parts["database"]["status"] == "ok" and parts["database"]["backend"] == "sqlite"
    assert parts["database"]["latency_ms"] < 1000
    assert parts["redis"] == {"configured": False}
    for name in ("llm", "index", "database"):
        assert health(warm, name) == 1.0
    assert (("component", "redis"),) not in warm.metrics.gauges[GAUGE]  # not configured


def test_a_loading_model_is_starting_not_failed(container: Container) -> None:
    container.metrics = RecordingMetrics()
    code, body = ready(container)
    assert (code, body["status"]) == (503, "starting")
    assert body["components"]["llm"]["status"] == "starting"
    assert health(container, "llm") == 0.0
    assert health(container, "database") == 1.0


def test_an_unreachable_database_is_an_error_and_not_ready(warm: Container) -> None:
    closed = free_port()  # nothing listens there: connection refused at once
    real = warm.kb.repo.engine
    warm.kb.repo.engine = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{closed}/x")
    try:
        code, body = ready(warm)
    finally:
        warm.kb.repo.engine.dispose()
        warm.kb.repo.engine = real
    db = body["components"]["database"]
    assert (code, body["status"]) == (503, "degraded")
    assert db["status"] == "error" and db["backend"] == "postgresql"
    assert "OperationalError" in db["error"]
    assert health(warm, "database") == 0.0


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word (a hung database)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


def test_a_hung_database_cannot_stall_the_probe(warm: Container, silent_server: int) -> None:
    real = warm.kb.repo.engine
    url = f"postgresql+psycopg://postgres@127.0.0.1:{silent_server}/x"
    warm.kb.repo.engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with TestClient(create_app(warm, warm=False)) as tc:
            started = time.perf_counter()
            r = tc.get("/ready")
            elapsed = time.perf_counter() - started
    finally:
        warm.kb.repo.engine = real
    assert elapsed < 2.5  # the 1 s deadline, not the driver's 3 s
    code, body = r.status_code, r.json()
    assert code == 503
    assert body["components"]["database"] == {
        "backend": "postgresql",
        "status": "error",
        "error": "no answer within 1 s",
    }


def test_an_open_breaker_degrades_but_keeps_the_service_ready(warm: Container) -> None:
    def crash() -> None:
        raise RuntimeError("backend down")

    for _ in range(warm.settings.enterprise.circuit_breaker.fail_max):
        with pytest.raises(RuntimeError):
            warm.breaker.call(crash)
    code, body = ready(warm)
    assert (code, body["status"]) == (200, "degraded")  # retrieval-only queries still work
    llm = body["components"]["llm"]
    assert llm["status"] == "error" and llm["breaker"] == "open"
    assert health(warm, "llm") == 0.0


def test_a_model_that_failed_to_load_is_degraded(
    make_container: Callable[..., Container], tmp_path
) -> None:
    c = make_container(
        tmp_path / "d",
        models={"llm_backend": "llama_cpp", "llm_path": str(tmp_path / "missing.gguf")},
    )
    c.metrics = RecordingMetrics()
    c.startup.warm_up()
    code, body = ready(c)
    assert (code, body["status"]) == (503, "degraded")
    assert body["components"]["llm"]["status"] == "error"
    assert health(c, "llm") == 0.0


def test_redis_when_configured_is_checked_for_real(
    make_container: Callable[..., Container], tmp_path
) -> None:
    up = make_container(tmp_path / "up", redis={"url": "redis://127.0.0.1:6379/12"})
    up.metrics = RecordingMetrics()
    up.startup.warm_up()
    code, body = ready(up)
    assert (code, body["status"]) == (200, "ready")
    assert body["components"]["redis"] == {"configured": True, "status": "ok"}
    assert health(up, "redis") == 1.0

    down = make_container(tmp_path / "down", redis={"url": f"redis://127.0.0.1:{free_port()}/0"})
    down.metrics = RecordingMetrics()
    down.startup.warm_up()
    code, body = ready(down)
    # The service answers without its cache: still ready, but degraded.
    assert (code, body["status"]) == (200, "degraded")
    assert body["components"]["redis"] == {"configured": True, "status": "error"}
    assert health(down, "redis") == 0.0
