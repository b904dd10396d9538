"""GET /v1/answers/{answer_id}/bundle: every way of asking over HTTP names the answer's id,
and only its asker gets the signed bundle; anyone else gets the 404 of an unknown id."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import bearer, token_for
from tests.api.test_query import parse_sse
from xnai.api.app import create_app
from xnai.bootstrap import Container
from xnai.domain.bundles import parse_bundle
from xnai.domain.rbac import Role

PUMP = {"query": "At what rpm does the coolant pump run?"}
CHAT = {"messages": [{"role": "user", "content": "At what rpm does the coolant pump run?"}]}


@pytest.fixture
def http(seeded: Container) -> Iterator[TestClient]:
    """A client without a default caller: each request names its own."""
    with TestClient(create_app(seeded, warm=False)) as tc:
        yield tc


@pytest.fixture
def victor(seeded: Container) -> dict[str, str]:
    return bearer(token_for(seeded, "victor", Role.VIEWER))


def bundle_url(answer_id: str) -> str:
    return f"/v1/answers/{answer_id}/bundle"


def test_the_asker_gets_the_signed_bundle_of_their_answer(
    http: TestClient, victor: dict[str, str], seeded: Container
) -> None:
    answer = http.post("/v1/query", json=PUMP, headers=victor).json()
    answer_id = answer["answer_id"]
    r = http.get(bundle_url(answer_id), headers=victor)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.headers["content-disposition"] == 'attachment; filename="answer-bundle.json"'
    bundle = parse_bundle(r.content)
    assert bundle.answer_id == answer_id and bundle.answer == answer["response"]
    assert [c.doc_id for c in bundle.citations] == [s["doc_id"] for s in answer["sources"]]
    assert [(c.start, c.end) for c in bundle.citations] == [
        tuple(s["span"]) for s in answer["sources"]
    ]
    assert seeded.answer_bundles.verify(bundle).ok


@pytest.mark.parametrize("who", ["another viewer", "an admin"])
def test_anyone_else_gets_404_as_for_an_unknown_id(
    http: TestClient, victor: dict[str, str], seeded: Container, who: str
) -> None:
    answer_id = http.post("/v1/query", json=PUMP, headers=victor).json()["answer_id"]
    role = Role.ADMIN if who == "an admin" else Role.VIEWER
    other = bearer(token_for(seeded, who.split()[-1], role))
    theirs = http.get(bundle_url(answer_id), headers=other)
    unknown = http.get(bundle_url("0" * 32), headers=victor)
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json()["error"].replace(answer_id, "ID") == unknown.json()["error"].replace(
        "0" * 32, "ID"
    )


@pytest.mark.parametrize("answer_id", ["..", "a" * 65, "not an id", "%2e%2e%2fkeys"])
def test_ids_that_name_no_answer_are_404(
    http: TestClient, victor: dict[str, str], answer_id: str
) -> None:
    assert http.get(bundle_url(answer_id), headers=victor).status_code == 404


def test_without_credentials_it_is_401(http: TestClient, victor: dict[str, str]) -> None:
    answer_id = http.post("/v1/query", json=PUMP, headers=victor).json()["answer_id"]
    assert http.get(bundle_url(answer_id)).status_code == 401


def test_a_streamed_answer_names_its_id_in_the_done_event(
    http: TestClient, victor: dict[str, str]
) -> None:
    with http.stream("POST", "/v1/query", json={**PUMP, "stream": True}, headers=victor) as r:
        events = parse_sse(r.iter_text())
    done = events[-1][1]
    r = http.get(bundle_url(done["answer_id"]), headers=victor)
    assert r.status_code == 200 and r.json()["answer"] == done["response"]


def test_sources_only_have_no_answer_and_no_id(http: TestClient, victor: dict[str, str]) -> None:
    body = http.post("/v1/query", json={**PUMP, "generate": False}, headers=victor).json()
    assert body["answer_id"] is None and body["sources"]


def test_the_openai_route_names_the_answer_id(http: TestClient, victor: dict[str, str]) -> None:
    reply = http.post("/v1/chat/completions", json=CHAT, headers=victor).json()
    answer_id = reply["xnai_answer_id"]
    bundle = http.get(bundle_url(answer_id), headers=victor).json()
    assert bundle["answer"] == reply["choices"][0]["message"]["content"]


def test_the_streamed_openai_route_names_it_in_the_last_chunk(
    http: TestClient, victor: dict[str, str]
) -> None:
    with http.stream(
        "POST", "/v1/chat/completions", json={**CHAT, "stream": True}, headers=victor
    ) as r:
        raw = "".join(r.iter_text())
    chunks = [
        json.loads(line.removeprefix("data: "))
        for line in raw.splitlines()
        if line.startswith("data: {")
    ]
    [last] = [c for c in chunks if c["choices"][0]["finish_reason"] == "stop"]
    assert http.get(bundle_url(last["xnai_answer_id"]), headers=victor).status_code == 200
