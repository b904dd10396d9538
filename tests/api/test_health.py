"""Liveness and readiness."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from tests.api.conftest import FAST_HASHER, bearer, token_for
from xnai.api.app import create_app
from xnai.bootstrap import Container
from xnai.domain.rbac import Role


def test_health_is_always_ok(client: TestClient) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


def test_ready_is_503_until_the_model_is_loaded(seeded: Container) -> None:
    headers = bearer(token_for(seeded, "monitor", Role.SYSTEM))
    with TestClient(create_app(seeded, warm=False), headers=headers) as tc:
        r = tc.get("/ready")
        assert r.status_code == 503
        assert r.headers["retry-after"] == "5"
        assert r.json()["components"]["llm"]["ready"] is False
        seeded.startup.warm_up()
        r = tc.get("/ready")
        assert r.status_code == 200
        body = r.json()
        assert body["status"] == "ready"
        assert body["components"]["index"] == {"status": "ok", "ready": True, "generation": 1}


def test_ready_reports_a_model_that_failed_to_load(make_container, tmp_path) -> None:
    c = make_container(
        tmp_path / "d",
        models={"llm_backend": "llama_cpp", "llm_path": str(tmp_path / "missing.gguf")},
    )
    c.startup.warm_up()
    c.auth.hasher = FAST_HASHER
    with TestClient(create_app(c, warm=False)) as tc:
        r = tc.get("/ready", headers=bearer(token_for(c, "monitor", Role.SYSTEM)))
    assert r.status_code == 503
    assert r.json()["status"] == "degraded"
    assert "missing.gguf" in r.json()["components"]["llm"]["error"]


def test_a_database_outage_is_a_503_with_retry_after(client: TestClient, seeded: Container) -> None:
    assert client.get("/v1/documents").status_code == 200  # the credential is verified now
    live = seeded.kb.repo.engine
    seeded.kb.repo.engine = create_engine(
        "postgresql+psycopg://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 1}
    )
    try:
        down = client.delete("/v1/documents/d_missing")
    finally:
        seeded.kb.repo.engine.dispose()
        seeded.kb.repo.engine = live
    assert down.status_code == 503, down.text
    assert down.headers["Retry-After"] == "5"
    assert down.json() == {"error": "storage temporarily unavailable", "retry_after": 5}
    assert client.delete("/v1/documents/d_missing").status_code == 404  # back by itself
