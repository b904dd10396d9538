"""A damaged index makes the service not ready and queries refused, never wrong answers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import FAST_HASHER, bearer, seed, token_for
from tests.conftest import make_settings
from tests.index_damage import generation_dir, overwrite_4k
from xnai.api.app import create_app
from xnai.bootstrap import Container, build
from xnai.domain.rbac import Role

MakeContainer = Callable[..., Container]


@pytest.fixture
def restarted(make_container: MakeContainer) -> Iterator[Container]:
    """A server process started after 4 KiB of its vector file were overwritten."""
    first = make_container()
    seed(first)
    overwrite_4k(generation_dir(first.settings.data_dir) / "vectors.faiss")
    c = build(make_settings(first.settings.data_dir))
    c.auth.hasher = FAST_HASHER
    assert c.startup.try_open_index() is False  # it starts, and says why it is not ready
    c.startup.warm_up()
    yield c
    c.close()


def test_ready_is_not_ready_when_vector_file_is_damaged(restarted: Container) -> None:
    headers = bearer(token_for(restarted, "monitor", Role.SYSTEM))  # details need read:metrics
    with TestClient(create_app(restarted, warm=False)) as tc:
        r = tc.get("/ready", headers=headers)
    assert r.status_code == 503
    index = r.json()["components"]["index"]
    assert index["status"] == "error" and index["ready"] is False
    assert "vectors.faiss" in index["error"] and "xnai index rebuild" in index["error"]
    assert r.json()["components"]["llm"]["error"] is None  # the model is not blamed


def test_query_refuses_a_damaged_index(restarted: Container) -> None:
    headers = bearer(token_for(restarted, "admin"))
    with TestClient(create_app(restarted, warm=False), headers=headers) as tc:
        r = tc.post("/v1/query", json={"query": "At what rpm does the coolant pump run?"})
        assert r.status_code == 503
        assert "xnai index rebuild" in r.json()["error"]
        r = tc.post("/v1/query", json={"query": "coolant pump", "mode": "dense"})
        assert r.status_code == 503


def test_a_rebuild_by_another_process_makes_the_server_ready(
    restarted: Container, make_container: MakeContainer
) -> None:
    headers = bearer(token_for(restarted, "admin"))
    with TestClient(create_app(restarted, warm=False), headers=headers) as tc:
        assert tc.get("/ready").status_code == 503
        other = build(make_settings(restarted.settings.data_dir))
        try:
            other.kb.rebuild()
        finally:
            other.close()
        r = tc.get("/ready")
        assert r.status_code == 200, r.json()
        assert r.json()["components"]["index"]["generation"] == 2
        r = tc.post("/v1/query", json={"query": "At what rpm does the coolant pump run?"})
        assert r.status_code == 200
        assert r.json()["sources"][0]["source"] == "/library/reactor.md"
