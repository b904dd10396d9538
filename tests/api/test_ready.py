"""GET /ready: each component (llm, index, database, redis), its health gauge, and the verdict."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from tests.api.conftest import FAST_HASHER, bearer, free_port, token_for
from xnai.adapters.memory.metrics import RecordingMetrics
from xnai.api.app import create_app
from xnai.bootstrap import Container
from xnai.domain.rbac import Role

GAUGE = "xoe_component_health_status"


def ready(c: Container) -> tuple[int, dict]:
    """The readiness as a caller with ``read:metrics`` sees it (every detail)."""
    c.auth.hasher = FAST_HASHER
    headers = bearer(token_for(c, "monitor", Role.SYSTEM))
    with TestClient(create_app(c, warm=False)) as tc:
        r = tc.get("/ready", headers=headers)
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
    warm.auth.hasher = FAST_HASHER
    headers = bearer(token_for(warm, "monitor", Role.SYSTEM))
    try:
        with TestClient(create_app(warm, warm=False)) as tc:
            started = time.perf_counter()
            r = tc.get("/ready", headers=headers)
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


def test_ready_hides_error_text_from_anonymous(
    make_container: Callable[..., Container], tmp_path
) -> None:
    missing = tmp_path / "secret-folder" / "missing.gguf"
    c = make_container(
        tmp_path / "d", models={"llm_backend": "llama_cpp", "llm_path": str(missing)}
    )
    c.auth.hasher = FAST_HASHER
    c.startup.warm_up()
    closed = free_port()
    real = c.kb.repo.engine
    c.kb.repo.engine = create_engine(f"postgresql+psycopg://dbadmin@127.0.0.1:{closed}/payroll")
    try:
        with TestClient(create_app(c, warm=False)) as tc:
            anonymous = tc.get("/ready")
            c.kb.repo.engine = real  # the admin signs in, then the database fails again
            token = token_for(c, "operator", Role.VIEWER)
            c.kb.repo.engine = create_engine(f"postgresql+psycopg://dbadmin@127.0.0.1:{closed}/x")
            signed_in = tc.get("/ready", headers=bearer(token))
    finally:
        c.kb.repo.engine.dispose()
        c.kb.repo.engine = real
    assert anonymous.status_code == signed_in.status_code == 503
    body = anonymous.json()
    assert body == {
        "status": "degraded",
        "components": {
            "llm": {"status": "error"},
            "index": {"status": "ok"},
            "database": {"status": "error"},
            "redis": {"configured": False},
        },
    }
    for secret in ("secret-folder", "dbadmin", "127.0.0.1", "payroll", "Error"):
        assert secret not in anonymous.text
    details = signed_in.json()["components"]
    assert "OperationalError" in details["database"]["error"]
    assert "secret-folder" in details["llm"]["error"]
