"""A real Prometheus scrapes the running app; queries come back through its HTTP API."""

from __future__ import annotations

import math
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from tests.api.conftest import FAST_HASHER, bearer, free_port, seed, token_for
from xnai.api.app import create_app
from xnai.bootstrap import Container

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
DEADLINE_S = 20.0

pytestmark = pytest.mark.skipif(
    not Path(PROMETHEUS).is_file(),
    reason="Prometheus is not installed (Debian: apt-get install --no-install-recommends "
    "prometheus)",
)

CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: xnai
    metrics_path: /metrics
    static_configs:
      - targets: ["{target}"]
"""


def wait_for(what: str, check: Callable[[], Any], deadline: float) -> Any:
    """Poll ``check`` until it returns something truthy; fail at ``deadline``."""
    while time.monotonic() < deadline:
        try:
            result = check()
        except httpx.HTTPError:
            result = None
        if result:
            return result
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def app_url(make_container: Callable[..., Container]) -> Iterator[tuple[str, Container]]:
    """The app (bound to loopback, so /metrics is public) served by uvicorn on a free port."""
    c = make_container()
    c.auth.hasher = FAST_HASHER
    seed(c)
    port = free_port()
    config = uvicorn.Config(
        create_app(c, warm=False), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    wait_for("the app", lambda: httpx.get(f"{url}/health", timeout=1).is_success, deadline)
    yield url, c
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def prometheus(app_url: tuple[str, Container], tmp_path: Path) -> Iterator[str]:
    """Prometheus on a free loopback port scraping the app every second."""
    target = app_url[0].removeprefix("http://")
    config = tmp_path / "prometheus.yml"
    config.write_text(CONFIG.format(target=target), encoding="utf-8")
    port = free_port()
    proc = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def instant(prom: str, expr: str) -> list[dict[str, Any]]:
    """The result vector of an instant query."""
    r = httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=2)
    r.raise_for_status()
    body = r.json()
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def scalar(prom: str, expr: str) -> float | None:
    """The value of a one-element result, None when empty."""
    result = instant(prom, expr)
    return float(result[0]["value"][1]) if result else None


def test_prometheus_reads_query_count_and_latency(
    app_url: tuple[str, Container], prometheus: str
) -> None:
    url, c = app_url
    deadline = time.monotonic() + DEADLINE_S
    wait_for("Prometheus to start", lambda: httpx.get(f"{prometheus}/-/ready").is_success, deadline)
    wait_for("a scrape of the app", lambda: scalar(prometheus, 'up{job="xnai"}') == 1, deadline)
    headers = bearer(token_for(c, "admin"))

    def ask(questions: list[str]) -> None:
        for question in questions:
            for generate in (True, False):
                body = {"query": question, "generate": generate}
                r = httpx.post(f"{url}/v1/query", json=body, headers=headers, timeout=10)
                assert r.status_code == 200, r.text

    def counted(n: int) -> Callable[[], bool]:
        return lambda: scalar(prometheus, "sum(xoe_query_count_total)") == n

    # A series first seen by a scrape has no earlier sample to rate against: the first
    # query creates the series, the later ones are what rate() sees.
    ask(["coolant pump rpm"])
    wait_for("the first queries in Prometheus", counted(2), deadline)
    ask(["economy class flights", "reactor seven"])
    wait_for("every query in Prometheus", counted(6), deadline)
    by_intent = {
        s["metric"]["intent"]: float(s["value"][1])
        for s in instant(prometheus, 'xoe_query_count_total{job="xnai"}')
    }
    assert by_intent == {"answer": 3.0, "retrieval": 3.0}
    p95 = "histogram_quantile(0.95, sum by (le) (rate(xoe_query_latency_seconds_bucket[1m])))"

    def latency() -> float | None:
        value = scalar(prometheus, p95)
        return value if value is not None and math.isfinite(value) else None

    seconds = wait_for("the p95 latency in Prometheus", latency, deadline)
    assert 0 < seconds <= 10  # a fake model answers in milliseconds; buckets bound the estimate
    assert scalar(prometheus, "sum(xoe_query_latency_seconds_count)") == 6
