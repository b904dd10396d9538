"""GET /metrics and what the API reports: queries, HTTP requests, security violations, server
errors, active users and loaded components, and the metrics port of its own."""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import FAST_HASHER, bearer, free_port, seed, token_for
from xnai.adapters.memory.metrics import RecordingMetrics
from xnai.api.app import app_from_environment, create_app
from xnai.api.metrics import ActiveUsers, loaded_components, start_port_server
from xnai.api.security import public
from xnai.bootstrap import Container
from xnai.config import redacted
from xnai.domain.errors import ConfigError, NotFoundError, NotReadyError
from xnai.domain.models import Answer, Citation
from xnai.domain.rbac import Role
from xnai.services.query_metrics import QueryMetrics

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
RELEVANT = "coolant pump rpm"
IRRELEVANT = "zebra migration across antarctic glaciers"


def scrape(client: TestClient, **headers: str) -> Samples:
    """Every sample of GET /metrics: (name, sorted labels) -> value."""
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when absent)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_are_public_on_a_loopback_address(anonymous: TestClient) -> None:
    r = anonymous.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE xoe_query_latency_seconds histogram" in r.text
    assert "# TYPE xoe_security_violation_total counter" in r.text


def test_elsewhere_metrics_need_read_metrics(make_container: Callable[..., Container]) -> None:
    c = make_container(server={"host": "0.0.0.0"})
    c.auth.hasher = FAST_HASHER
    token = token_for(c, "watcher", Role.VIEWER)
    with TestClient(create_app(c, warm=False)) as tc:
        assert tc.get("/metrics").status_code == 401
        samples = scrape(tc, **bearer(token))
        schema = tc.get("/openapi.json", headers=bearer(token)).json()
    assert value(samples, "xoe_security_violation_total", kind="unauthenticated") == 1
    assert schema["paths"]["/metrics"]["get"]["x-permission"] == "read:metrics"


def test_without_monitoring_metrics_stay_in_memory(
    make_container: Callable[..., Container],
) -> None:
    c = make_container(enterprise={"monitoring": {"enabled": False}})
    c.auth.hasher = FAST_HASHER
    seed(c)
    assert isinstance(c.metrics, RecordingMetrics)
    with TestClient(create_app(c, warm=False), headers=bearer(token_for(c, "admin"))) as tc:
        assert tc.post("/v1/query", json={"query": RELEVANT}).status_code == 200
        r = tc.get("/metrics")
    assert r.status_code == 404
    assert "enterprise.monitoring.enabled" in r.json()["error"]
    assert c.metrics.value("xoe_query_count_total", intent="answer", component="api") == 1


def _sse_done(text: str) -> dict[str, object]:
    events = [block for block in text.split("\n\n") if block.startswith("event: done")]
    assert len(events) == 1, text
    return dict(json.loads(events[0].split("data: ", 1)[1]))


def test_every_query_route_reports_its_query(client: TestClient) -> None:
    assert client.post("/v1/query", json={"query": RELEVANT}).status_code == 200
    assert client.post("/query", json={"query": IRRELEVANT}).status_code == 200
    streamed = client.post("/v1/query", json={"query": RELEVANT, "stream": True})
    assert _sse_done(streamed.text)["response"]
    retrieval = {"query": RELEVANT, "generate": False, "mode": "dense"}
    assert client.post("/v1/query", json=retrieval).status_code == 200
    chat = {"messages": [{"role": "user", "content": RELEVANT}]}
    assert client.post("/v1/chat/completions", json=chat).status_code == 200
    r = client.post("/v1/chat/completions", json={**chat, "stream": True})
    assert r.text.rstrip().endswith("data: [DONE]")
    s = scrape(client)
    assert value(s, "xoe_query_count_total", intent="answer", component="api") == 3
    assert value(s, "xoe_query_count_total", intent="retrieval", component="api") == 1
    assert value(s, "xoe_query_count_total", intent="chat", component="api") == 2
    latency = "xoe_query_latency_seconds_count"
    assert value(s, latency, mode="hybrid", generate="true") == 5
    assert value(s, latency, mode="dense", generate="false") == 1
    # Five of six found a relevant source; four of five generated answers are grounded.
    assert value(s, "xoe_relevance_score_count") == 5
    assert value(s, "xoe_recall_rate") == pytest.approx(5 / 6)
    assert value(s, "xoe_response_quality_score") == pytest.approx(4 / 5)


def test_recall_compares_dense_scores_with_min_score() -> None:
    m = RecordingMetrics()
    qm = QueryMetrics(m, default_mode="hybrid", min_score=0.2)

    def answer(score: float, grounded: bool = True) -> Answer:
        cited = Citation(1, "d", "c", "T", "s", 0, 5, score, "text")
        return Answer("", (cited,), "fake", 1.0, 0.0, grounded=grounded)

    qm.answered(answer(0.12), started=0.0, intent="retrieval", mode="dense", generate=False)
    assert m.value("xoe_recall_rate") == 0
    qm.answered(answer(0.33), started=0.0, intent="retrieval", mode="dense", generate=False)
    assert m.value("xoe_recall_rate") == 0.5
    qm.answered(answer(0.01), started=0.0, intent="retrieval", generate=False)  # fused score
    assert m.value("xoe_recall_rate") == pytest.approx(2 / 3)
    qm.answered(answer(0.03, grounded=False), started=0.0, intent="answer")
    assert m.value("xoe_response_quality_score") == 0
    assert [k for k, _ in m.observations["xoe_query_latency_seconds"]] == [
        (("generate", "false"), ("mode", "dense")),
        (("generate", "false"), ("mode", "dense")),
        (("generate", "false"), ("mode", "hybrid")),
        (("generate", "true"), ("mode", "hybrid")),
    ]


def test_requests_are_counted_by_route_template(client: TestClient) -> None:
    assert client.delete("/v1/documents/secret-plan-42").status_code == 404
    assert client.get("/no/such/page-7").status_code == 404
    assert client.get("/health").status_code == 200
    r = client.get("/metrics")
    s = scrape(client)
    route = "/v1/documents/{doc_id}"
    assert value(s, "xoe_http_requests_total", method="DELETE", route=route, status="4xx") == 1
    assert value(s, "xoe_http_requests_total", method="GET", route="other", status="4xx") == 1
    assert value(s, "xoe_http_requests_total", method="GET", route="/health", status="2xx") == 1
    assert value(s, "xoe_http_request_duration_seconds_count", method="DELETE", route=route) == 1
    assert "secret-plan-42" not in r.text and "page-7" not in r.text


def test_security_violations_are_counted_by_kind(seeded: Container, anonymous: TestClient) -> None:
    viewer = bearer(token_for(seeded, "reader", Role.VIEWER))
    admin = bearer(token_for(seeded, "admin"))
    assert anonymous.get("/v1/documents").status_code == 401
    assert anonymous.get("/v1/documents", headers=bearer("not-a-token")).status_code == 401
    assert anonymous.get("/v1/users", headers=viewer).status_code == 403
    wrong = {"username": "reader", "password": "not the password at all"}
    codes = [anonymous.post("/v1/auth/login", json=wrong).status_code for _ in range(6)]
    assert codes == [401, 401, 401, 401, 429, 429]  # the fifth failure locks the account
    files = [("files", ("tool.exe", b"MZ\x90\x00binary", "application/octet-stream"))]
    r = anonymous.post("/v1/documents", files=files, headers=admin)
    assert r.status_code == 201 and len(r.json()["failed"]) == 1
    s = scrape(anonymous)
    kinds = {"unauthenticated": 2, "forbidden": 1, "login_failed": 4, "locked": 2}
    for kind, count in {**kinds, "invalid_upload": 1}.items():
        assert value(s, "xoe_security_violation_total", kind=kind) == count, kind


class Unknown(Exception):
    """An error from outside the product and Python."""


@pytest.fixture
def boom(seeded: Container) -> Iterator[TestClient]:
    app: FastAPI = create_app(seeded, warm=False)
    raised: dict[str, Exception] = {
        "runtime": RuntimeError("bug"),
        "unknown": Unknown("third party"),
        "not-ready": NotReadyError("still loading"),
        "missing": NotFoundError("no such thing"),
    }

    @app.get("/boom/{kind}", dependencies=[public()])
    def explode(kind: str) -> None:
        raise raised[kind]

    with TestClient(app, raise_server_exceptions=False) as tc:
        yield tc


def test_server_errors_are_counted_by_area_and_type(boom: TestClient) -> None:
    for kind, status in [("runtime", 500), ("unknown", 500), ("not-ready", 503), ("missing", 404)]:
        assert boom.get(f"/boom/{kind}").status_code == status
    s = scrape(boom)
    errors = {labels: v for (name, labels), v in s.items() if name == "xoe_error_count_total" and v}
    assert errors == {
        (("component", "boom"), ("type", "RuntimeError")): 1,
        (("component", "boom"), ("type", "other")): 1,
        (("component", "boom"), ("type", "NotReadyError")): 1,
    }
    assert value(s, "xoe_http_requests_total", method="GET", route="/boom/{kind}", status="5xx")


def test_active_users_count_distinct_principals(seeded: Container, anonymous: TestClient) -> None:
    one, two = token_for(seeded, "one", Role.VIEWER), token_for(seeded, "two", Role.EDITOR)
    for token in (one, one, two):
        assert anonymous.get("/v1/documents", headers=bearer(token)).status_code == 200
    anonymous.get("/health")
    assert value(scrape(anonymous), "xoe_active_users") == 2
    assert one not in anonymous.get("/metrics").text


def test_active_users_forget_after_the_window() -> None:
    now = [0.0]
    users = ActiveUsers(window_s=900, clock=lambda: now[0])
    users.seen("u1")
    now[0] = 300
    users.seen("u2")
    now[0] = 600
    users.seen("u1")  # u1's last request is now the later one
    now[0] = 1000
    assert users.count() == 2
    now[0] = 1250
    assert users.count() == 1
    now[0] = 1501
    assert users.count() == 0


def test_loaded_components_are_counted(seeded: Container, anonymous: TestClient) -> None:
    expected = len(seeded.loaders) + 1 + 2  # loaders, the embedder, both indexes
    assert loaded_components(seeded) == expected
    assert value(scrape(anonymous), "xoe_wasm_component_count") == expected
    seeded.model.load()
    assert value(scrape(anonymous), "xoe_wasm_component_count") == expected + 1


def test_ingest_is_counted(seeded: Container, anonymous: TestClient, tmp_path: Path) -> None:
    library = tmp_path / "library"
    library.mkdir()
    (library / "turbines.md").write_text("# Turbines\n\nThe turbine hall has four units.\n")
    first = seeded.ingestion.ingest_files(seeded.ingestion.document_files([library]), user="tester")
    seeded.ingestion.ingest_files(seeded.ingestion.document_files([library]), user="tester")
    s = scrape(anonymous)
    assert value(s, "xoe_ingest_chunks_total") == first.chunks_added > 0
    assert value(s, "xoe_ingest_documents_total", result="added") == 1
    assert value(s, "xoe_ingest_documents_total", result="unchanged") == 1


def _refused(url: str) -> bool:
    try:
        httpx.get(url, timeout=2)
    except httpx.ConnectError:
        return True
    return False


def test_metrics_port_serves_while_the_app_runs(make_container: Callable[..., Container]) -> None:
    port = free_port()
    c = make_container(enterprise={"monitoring": {"prometheus_port": port}})
    url = f"http://127.0.0.1:{port}/metrics"
    with TestClient(create_app(c, warm=False)) as tc:  # only servers ask for the port
        tc.get("/health")
        assert _refused(url)
    with TestClient(create_app(c, warm=False, metrics_port=True)) as tc:
        tc.get("/health")
        r = httpx.get(url, timeout=5)
        assert r.status_code == 200
        assert 'xoe_http_requests_total{method="GET",route="/health",status="2xx"}' in r.text
    assert _refused(url)


def test_a_busy_metrics_port_does_not_stop_the_api(
    make_container: Callable[..., Container], caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        c = make_container(enterprise={"monitoring": {"prometheus_port": port}})
        app = create_app(c, warm=False, metrics_port=True)
        with caplog.at_level(logging.ERROR, logger="xnai.api"), TestClient(app) as tc:
            assert tc.get("/metrics").status_code == 200
    assert "prometheus_port" in caplog.text


def test_no_metrics_port_when_zero_or_monitoring_is_off(
    make_container: Callable[..., Container],
) -> None:
    for monitoring in ({"prometheus_port": 0}, {"enabled": False, "prometheus_port": free_port()}):
        c = make_container(enterprise={"monitoring": monitoring})
        assert start_port_server(c) is None


def test_the_server_factory_serves_the_metrics_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[enterprise.monitoring]\nprometheus_port = {port}\n[models]\nllm_backend = "fake"\n'
        f'embedder_backend = "fake"\n[storage]\ndata_dir = "{tmp_path / "data"}"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("XNAI_CONFIG", str(config))
    umask = os.umask(0o022)
    os.umask(umask)
    try:
        app = app_from_environment()
        with TestClient(app) as tc:
            assert tc.get("/health").status_code == 200
            r = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
            assert r.status_code == 200 and "xoe_uptime_seconds" in r.text
        app.state.container.close()
    finally:
        os.umask(umask)  # the factory makes new files owner-only for the whole process
    assert _refused(f"http://127.0.0.1:{port}/metrics")


def _listening_hosts(port: int) -> set[str]:
    """The local addresses with a listening TCP socket on ``port`` (from /proc/net/tcp*)."""
    found: set[str] = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state != "0A" or int(hex_port, 16) != port or len(address) != width:
                continue
            raw = bytes.fromhex(address)
            if width == 8:
                found.add(socket.inet_ntop(socket.AF_INET, raw[::-1]))
            else:
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                found.add(socket.inet_ntop(socket.AF_INET6, words))
    return found


def test_metrics_port_binds_loopback_by_default(
    make_container: Callable[..., Container],
) -> None:
    port = free_port()
    # The API itself listens on every interface; the metrics port stays on loopback.
    c = make_container(
        server={"host": "0.0.0.0"}, enterprise={"monitoring": {"prometheus_port": port}}
    )
    assert c.settings.enterprise.monitoring.prometheus_host == "127.0.0.1"
    stop = start_port_server(c)
    assert stop is not None
    try:
        assert _listening_hosts(port) == {"127.0.0.1"}
        assert httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).status_code == 200
    finally:
        stop()


def test_metrics_port_requires_token_off_loopback(
    make_container: Callable[..., Container], tmp_path: Path
) -> None:
    exposed = {"prometheus_port": free_port(), "prometheus_host": "0.0.0.0"}
    with pytest.raises(ConfigError) as refused:
        make_container(tmp_path / "open", enterprise={"monitoring": exposed})
    message = str(refused.value)
    assert "enterprise.monitoring.prometheus_token" in message
    assert "XNAI_ENTERPRISE__MONITORING__PROMETHEUS_TOKEN" in message

    port, token = free_port(), "scrape-" + "k" * 32
    monitoring = {"prometheus_port": port, "prometheus_token": token}
    c = make_container(tmp_path / "guarded", enterprise={"monitoring": monitoring})
    assert token not in json.dumps(redacted(c.settings))
    stop = start_port_server(c)
    assert stop is not None
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        assert httpx.get(url, timeout=5).status_code == 401
        wrong = httpx.get(url, headers={"Authorization": "Bearer nope"}, timeout=5)
        assert wrong.status_code == 401 and "xoe_" not in wrong.text
        r = httpx.get(url, headers=bearer(token), timeout=5)
        assert r.status_code == 200 and "xoe_uptime_seconds" in r.text
    finally:
        stop()


def test_proxied_request_is_remote_for_metrics(
    make_container: Callable[..., Container],
) -> None:
    # Behind a local TLS proxy every request arrives from 127.0.0.1: none of them is local.
    c = make_container(server={"host": "127.0.0.1", "behind_tls_proxy": True})
    c.auth.hasher = FAST_HASHER
    token = token_for(c, "watcher", Role.VIEWER)
    with TestClient(create_app(c, warm=False), client=("127.0.0.1", 50000)) as tc:
        assert tc.get("/metrics").status_code == 401
        assert tc.get("/openapi.json").status_code == 401
        assert tc.get("/metrics", headers=bearer(token)).status_code == 200
        assert tc.get("/openapi.json", headers=bearer(token)).status_code == 200
