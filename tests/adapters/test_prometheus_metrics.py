"""The Prometheus adapter: catalogue collectors in a private registry, system figures read
from /proc at scrape time, and its own HTTP port."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from xnai.adapters.metrics.prometheus import PrometheusMetrics
from xnai.adapters.metrics.system import MIN_CPU_TICKS, SystemReader
from xnai.domain.metrics import CATALOGUE, Metrics

PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


def samples(m: PrometheusMetrics, accept: str | None = None) -> dict[tuple[str, tuple], float]:
    """Every sample of one scrape: (name, sorted labels) -> value."""
    text = m.exposition(accept)[0].decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def types(m: PrometheusMetrics) -> dict[str, str]:
    """``# TYPE`` of every metric in one scrape."""
    text = m.exposition()[0].decode()
    return {
        line.split()[2]: line.split()[3] for line in text.splitlines() if line.startswith("# TYPE")
    }


def fake_proc(root: Path, *, cpu: tuple[int, ...], rx: int = 0, tx: int = 0) -> Path:
    """A /proc with the files the system reader reads."""
    (root / "self").mkdir(parents=True, exist_ok=True)
    (root / "net").mkdir(exist_ok=True)
    (root / "stat").write_text("cpu  " + " ".join(map(str, cpu)) + "\ncpu0 1 2 3 4\n")
    (root / "self" / "statm").write_text("5000 1234 300 10 0 900 0\n")
    (root / "net" / "dev").write_text(
        "Inter-|   Receive                            |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets\n"
        f"    lo: 999999 10 0 0 0 0 0 0 999999 10 0 0 0 0 0 0\n"
        f"  eth0: {rx} 5 0 0 0 0 0 0 {tx} 7 0 0 0 0 0 0\n"
        f"  eth1: 100 1 0 0 0 0 0 0 50 1 0 0 0 0 0 0\n"
    )
    # The command name holds a space and a parenthesis; starttime (field 22) is 5 s of ticks.
    fields = ["S"] + ["0"] * 18 + [str(5 * TICK)] + ["0"] * 10
    (root / "self" / "stat").write_text(f"42 (odd) name) {' '.join(fields)}\n")
    (root / "uptime").write_text("125.50 200.00\n")
    return root


def test_every_catalogue_metric_is_exposed_with_its_kind(tmp_path: Path) -> None:
    m = PrometheusMetrics(tmp_path)
    assert isinstance(m, Metrics)
    exposed = types(m)
    for spec in CATALOGUE:
        assert exposed.get(spec.name) == spec.kind, spec.name


def test_reports_values_with_their_labels(tmp_path: Path) -> None:
    m = PrometheusMetrics(tmp_path)
    m.inc("xoe_query_count_total", intent="answer", component="api")
    m.inc("xoe_query_count_total", 2, intent="answer", component="api")
    m.set("xoe_circuit_breaker_state", 1, backend="llm")
    m.observe("xoe_query_latency_seconds", 0.3, mode="hybrid", generate="true")
    m.observe("xoe_query_latency_seconds", 7.0, mode="hybrid", generate="true")
    got = samples(m)
    assert got[("xoe_query_count_total", (("component", "api"), ("intent", "answer")))] == 3
    assert got[("xoe_circuit_breaker_state", (("backend", "llm"),))] == 1
    labels = (("generate", "true"), ("mode", "hybrid"))
    assert got[("xoe_query_latency_seconds_count", labels)] == 2
    assert got[("xoe_query_latency_seconds_sum", labels)] == pytest.approx(7.3)
    bucket = "xoe_query_latency_seconds_bucket"
    assert got[(bucket, tuple(sorted((*labels, ("le", "0.5")))))] == 1
    assert got[(bucket, tuple(sorted((*labels, ("le", "10.0")))))] == 2


def test_refuses_what_the_catalogue_does_not_declare(tmp_path: Path) -> None:
    m = PrometheusMetrics(tmp_path)
    with pytest.raises(ValueError, match="catalogue"):
        m.inc("xoe_not_a_metric_total")
    with pytest.raises(ValueError, match="catalogue"):
        m.set("xoe_query_count_total", 1, intent="answer", component="api")
    with pytest.raises(ValueError, match="labels"):
        m.inc("xoe_query_count_total", user_id="u_1")
    with pytest.raises(ValueError, match="scraped"):
        m.set("xoe_cpu_usage_percent", 5)


def test_each_instance_has_its_own_registry(tmp_path: Path) -> None:
    one, two = PrometheusMetrics(tmp_path), PrometheusMetrics(tmp_path)
    one.inc("xoe_generation_rejected_total")
    assert samples(one)[("xoe_generation_rejected_total", ())] == 1
    assert samples(two)[("xoe_generation_rejected_total", ())] == 0
    assert REGISTRY.get_sample_value("xoe_generation_rejected_total") is None


def test_system_figures_from_proc(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path / "proc", cpu=(100, 0, 100, 800, 0, 0, 0, 0), rx=1000, tx=400)
    reader = SystemReader(tmp_path, proc)
    assert reader.memory_bytes() == 1234 * PAGE
    assert (reader.rx_bytes(), reader.tx_bytes()) == (1100, 450)  # loopback left out
    assert reader.uptime() == pytest.approx(120.5)
    usage = shutil.disk_usage(tmp_path)
    assert reader.disk_percent() == pytest.approx(100 * usage.used / (usage.used + usage.free))
    # No window of its own yet: the average since boot (200 busy of 1000 ticks).
    assert reader.cpu_percent() == pytest.approx(20.0)
    # 300 more ticks, 240 of them busy (user 150, system 90, iowait counts as idle).
    fake_proc(proc, cpu=(250, 0, 190, 820, 40, 0, 0, 0))
    assert reader.cpu_percent() == pytest.approx(80.0)
    # Too few ticks for a sample: the last value stays, and so does the baseline.
    fake_proc(proc, cpu=(250 + MIN_CPU_TICKS - 1, 0, 190, 820, 40, 0, 0, 0))
    assert reader.cpu_percent() == pytest.approx(80.0)
    fake_proc(proc, cpu=(250 + MIN_CPU_TICKS - 1, 0, 190, 821, 40, 0, 0, 0))
    assert reader.cpu_percent() == pytest.approx(100 * (MIN_CPU_TICKS - 1) / MIN_CPU_TICKS)


def test_system_figures_are_read_at_scrape_time(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path / "proc", cpu=(1, 0, 1, 8, 0, 0, 0, 0), rx=10, tx=20)
    m = PrometheusMetrics(tmp_path, proc=proc)
    assert samples(m)[("xoe_network_rx_bytes_total", ())] == 110
    fake_proc(proc, cpu=(1, 0, 1, 8, 0, 0, 0, 0), rx=5000, tx=20)
    assert samples(m)[("xoe_network_rx_bytes_total", ())] == 5100
    assert samples(m)[("xoe_memory_usage_bytes", ())] == 1234 * PAGE


def test_without_proc_unreadable_figures_are_left_out(tmp_path: Path) -> None:
    m = PrometheusMetrics(tmp_path / "data", proc=tmp_path / "no-proc")
    got = {name for name, _ in samples(m)}
    for name in ("xoe_cpu_usage_percent", "xoe_memory_usage_bytes", "xoe_network_rx_bytes_total"):
        assert name not in got
    assert "xoe_disk_usage_percent" in got  # the nearest existing parent of the data dir
    assert "xoe_uptime_seconds" in got  # since the reader was made


def test_real_proc_figures_are_plausible(tmp_path: Path) -> None:
    got = samples(PrometheusMetrics(tmp_path))
    assert 0 <= got[("xoe_cpu_usage_percent", ())] <= 100
    assert got[("xoe_memory_usage_bytes", ())] > 10 * 2**20
    assert 0 < got[("xoe_disk_usage_percent", ())] <= 100
    assert got[("xoe_uptime_seconds", ())] > 0


def test_read_at_scrape_replaces_a_reported_gauge(tmp_path: Path) -> None:
    m = PrometheusMetrics(tmp_path)
    m.set("xoe_active_users", 9)
    value = [3.0]
    m.read_at_scrape("xoe_active_users", lambda: value[0])
    assert samples(m)[("xoe_active_users", ())] == 3
    value[0] = 4.0
    assert samples(m)[("xoe_active_users", ())] == 4
    m.read_at_scrape("xoe_active_users", lambda: 7.0)  # a second app over the same container
    assert samples(m)[("xoe_active_users", ())] == 7
    with pytest.raises(ValueError, match="scraped"):
        m.set("xoe_active_users", 1)
    with pytest.raises(ValueError, match="unlabelled gauge"):
        m.read_at_scrape("xoe_component_health_status", lambda: 1.0)
    with pytest.raises(ValueError, match="unlabelled gauge"):
        m.read_at_scrape("xoe_generation_rejected_total", lambda: 1.0)


def test_a_failing_reader_leaves_out_only_its_metric(tmp_path: Path) -> None:
    m = PrometheusMetrics(tmp_path)

    def broken() -> float:
        raise RuntimeError("unreadable")

    m.read_at_scrape("xoe_active_users", broken)
    got = {name for name, _ in samples(m)}
    assert "xoe_active_users" not in got
    assert "xoe_uptime_seconds" in got


def test_openmetrics_on_request(tmp_path: Path) -> None:
    m = PrometheusMetrics(tmp_path)
    body, content_type = m.exposition("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")
    assert m.exposition()[1].startswith("text/plain; version=0.0.4")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serves_its_own_port_until_stopped(tmp_path: Path) -> None:
    m = PrometheusMetrics(tmp_path)
    m.inc("xoe_ingest_chunks_total", 12)
    port = _free_port()
    stop = m.serve("127.0.0.1", port)
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert r.status_code == 200
        assert "xoe_ingest_chunks_total 12.0" in r.text
    finally:
        stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
