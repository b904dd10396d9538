"""POST /v1/query and /query: JSON and server-sent events."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

from fastapi.testclient import TestClient

from xnai.adapters.memory.llm import FakeChatModel
from xnai.bootstrap import Container


def test_query_answers_with_numbered_citations(client: TestClient) -> None:
    r = client.post("/v1/query", json={"query": "At what rpm does the coolant pump run?"})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"answer_id", "response", "sources", "metadata"}
    assert "1450 rpm" in body["response"]
    top = body["sources"][0]
    assert top["number"] == 1
    assert top["source"] == "/library/reactor.md"
    assert top["title"] == "Reactor"
    start, end = top["span"]
    assert (
        top["text"] in open_text("reactor.md")[start:end]
        or top["text"] == (open_text("reactor.md")[start:end])
    )
    meta = body["metadata"]
    assert set(meta) >= {"processing_time", "retrieval_ms", "generation_ms", "model"}
    assert meta["model"] == "fake"


def open_text(name: str) -> str:
    from tests.api.conftest import DOCS

    return DOCS[name]


def test_query_alias_is_the_same_endpoint(client: TestClient) -> None:
    a = client.post("/query", json={"query": "economy class flights", "mode": "lexical"})
    assert a.status_code == 200
    assert a.json()["sources"][0]["source"] == "/library/policy.md"


def test_each_mode_and_top_k(client: TestClient) -> None:
    for mode in ("dense", "lexical", "hybrid"):
        r = client.post(
            "/v1/query",
            json={"query": "coolant pump rpm", "mode": mode, "top_k": 1, "generate": False},
        )
        assert r.status_code == 200, r.text
        sources = r.json()["sources"]
        assert len(sources) == 1
        assert sources[0]["source"] == "/library/reactor.md"
        assert r.json()["response"] == ""


def test_nothing_relevant_says_so_instead_of_guessing(client: TestClient) -> None:
    r = client.post("/v1/query", json={"query": "zebra quantum saxophone", "mode": "dense"})
    body = r.json()
    assert r.status_code == 200
    assert body["sources"] == []
    assert "could not find" in body["response"]
    assert body["metadata"]["grounded"] is False


def test_stream_sends_tokens_then_sources(client: TestClient) -> None:
    with client.stream(
        "POST", "/v1/query", json={"query": "coolant pump rpm", "stream": True}
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(r.iter_text())
    kinds = [k for k, _ in events]
    assert kinds[0] == "sources" and kinds.count("sources") == 1
    assert kinds.count("done") == 1 and kinds[-1] == "done"
    assert kinds.count("token") >= 2
    text = "".join(d["text"] for k, d in events if k == "token")
    done = events[-1][1]
    assert done["response"] == text.strip()
    assert done["sources"][0]["source"] == "/library/reactor.md"


def test_stream_sends_the_sources_before_the_model_starts(
    client: TestClient, container: Container
) -> None:
    """The sources event reaches the client while the model still waits to begin: a user
    sees where the answer will come from before the prompt is read."""
    gate = threading.Event()
    seen: list[bool] = []

    class Gated(FakeChatModel):
        def stream(self, *args: Any, **kwargs: Any) -> Iterator[str]:
            seen.append(gate.wait(timeout=10))
            yield from super().stream(*args, **kwargs)

    container.answers.model = Gated()
    kinds = []
    with client.stream(
        "POST", "/v1/query", json={"query": "coolant pump rpm", "stream": True}
    ) as r:
        for line in r.iter_lines():
            if line.startswith("event: "):
                kinds.append(line[7:])
            if line.startswith("data: ") and kinds[-1] == "sources":
                sources = json.loads(line[6:])
                gate.set()
    assert seen == [True], "the model started before the client had the sources"
    assert kinds[0] == "sources" and kinds[-1] == "done"
    assert sources["sources"][0]["source"] == "/library/reactor.md"
    assert sources["metadata"]["grounded"] is True
    assert sources["metadata"]["retrieval_ms"] > 0


def parse_sse(chunks: object) -> list[tuple[str, dict]]:
    raw = "".join(chunks)  # type: ignore[arg-type]
    events = []
    for block in raw.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_validation_errors_are_422_json_without_traceback(client: TestClient) -> None:
    for bad in (
        {},
        {"query": ""},
        {"query": "x", "mode": "fuzzy"},
        {"query": "x", "top_k": 0},
        {"query": "x", "unknown": 1},
    ):
        r = client.post("/v1/query", json=bad)
        assert r.status_code == 422, bad
        body = r.json()
        assert body["error"] == "invalid request"
        assert "Traceback" not in r.text
    r = client.post("/v1/query", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422


def test_unknown_route_is_404_json(client: TestClient) -> None:
    r = client.get("/no/such/route")
    assert r.status_code == 404
    assert r.json() == {"error": "not found"}


def test_body_over_the_limit_is_413(make_container, tmp_path) -> None:
    from xnai.api.app import create_app

    c = make_container(tmp_path / "small", server={"max_body_mb": 0.001})
    with TestClient(create_app(c, warm=False)) as tc:
        r = tc.post("/v1/query", json={"query": "x" * 5000})
        assert r.status_code == 413
        assert "too large" in r.json()["error"]

        def chunks():  # no content-length: counted while streaming
            for _ in range(10):
                yield b"x" * 500

        r = tc.post("/v1/query", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413
