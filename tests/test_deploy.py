"""The monitoring deployment files: alert rules and their unit tests, the Prometheus example,
the Grafana dashboard and provisioning, and the metrics reference page."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from xnai.domain.metrics import CATALOGUE, SPECS

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS = ROOT / "deploy" / "prometheus"
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "xoe-novai.json"
METRICS_PAGE = ROOT / "docs" / "reference" / "metrics.md"
PROMTOOL = shutil.which("promtool")
BUILTINS = {"up"}  # series Prometheus makes itself
TARGET_LABELS = {"job", "instance"}
SEED_ALERTS = {
    "XoeHighCpuUsage",
    "XoeHighQueryLatency",
    "XoeComponentUnhealthy",
    "XoeCircuitBreakerOpen",
    "XoeSecurityViolations",
}

needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is missing (Debian: apt-get install --no-install-recommends prometheus)",
)


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run promtool; the test fails with its output when it does."""
    assert PROMTOOL is not None
    run = subprocess.run([PROMTOOL, *map(str, args)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    return run


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def alert_rules() -> list[dict[str, Any]]:
    return [r for g in load_yaml(PROMETHEUS / "alerts.yml")["groups"] for r in g["rules"]]


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def panel_exprs() -> list[tuple[int, str]]:
    return [(p["id"], t["expr"]) for p in dashboard()["panels"] for t in p["targets"]]


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_RANGE = re.compile(r"\[[^\]]*\]")
_NAME = re.compile(r"(?<![\w:.])([A-Za-z_:][\w:]*)\s*(\{[^}]*\})?\s*(\()?")
_MATCHER = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "group_left", "group_right", "inf", "nan"}


def selectors(expr: str) -> list[tuple[str, set[str]]]:
    """The metric names of a PromQL expression, each with the label names it matches on."""
    text = _RANGE.sub("", _GROUPING.sub("", _STRING.sub('""', expr)))
    found = []
    for name, matchers, call in _NAME.findall(text):
        if call or name.lower() in _KEYWORDS:
            continue  # a function or aggregation, or an operator word
        found.append((name, set(_MATCHER.findall(matchers))))
    return found


def unknown_metrics(expr: str) -> list[str]:
    """Metric names and label names of ``expr`` the catalogue does not declare."""
    problems = []
    for name, labels in selectors(expr):
        base, allowed = name, set(TARGET_LABELS)
        if name in BUILTINS:
            continue
        for suffix in ("_bucket", "_count", "_sum"):
            stem = name.removesuffix(suffix)
            if stem != name and stem in SPECS and SPECS[stem].kind == "histogram":
                base = stem
                allowed |= {"le"} if suffix == "_bucket" else set()
        spec = SPECS.get(base)
        if spec is None:
            problems.append(f"{name} is not in the catalogue")
        elif extra := labels - allowed - set(spec.labels):
            problems.append(f"{name} has no labels {sorted(extra)}")
    return problems


def test_selectors_find_metrics_and_labels() -> None:
    expr = (
        'sum by (le, route) (rate(xoe_http_request_duration_seconds_bucket{route="/v1/{x}"}[5m]))'
        " / on (job) group_left sum(up) > bool 1e-3"
    )
    assert selectors(expr) == [
        ("xoe_http_request_duration_seconds_bucket", {"route"}),
        ("up", set()),
    ]
    assert unknown_metrics("rate(xoe_nothing_total[5m]) + xoe_query_count_total{user='u'}") == [
        "xoe_nothing_total is not in the catalogue",
        "xoe_query_count_total has no labels ['user']",
    ]


# Alert rules


def test_alert_rules_use_only_catalogue_metrics() -> None:
    rules = alert_rules()
    assert {r["alert"] for r in rules} >= SEED_ALERTS
    assert len({r["alert"] for r in rules}) == len(rules)
    for rule in rules:
        assert unknown_metrics(rule["expr"]) == [], rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def test_every_alert_is_tested_firing_and_quiet() -> None:
    tests = load_yaml(PROMETHEUS / "alerts.test.yml")["tests"]
    cases = [case for t in tests for case in t["alert_rule_test"]]
    for rule in alert_rules():
        mine = [c for c in cases if c["alertname"] == rule["alert"]]
        assert any(c["exp_alerts"] for c in mine), f"{rule['alert']} is never tested firing"
        assert any(not c["exp_alerts"] for c in mine), f"{rule['alert']} is never tested quiet"
    for t in tests:  # and the quiet series of each test never fire at the firing time
        firing = [c for c in t["alert_rule_test"] if c["exp_alerts"]]
        assert firing and len(t["input_series"]) > 1, t["name"]


@needs_promtool
def test_promtool_checks_and_unit_tests_the_alert_rules() -> None:
    assert "SUCCESS" in promtool("check", "rules", PROMETHEUS / "alerts.yml").stdout
    assert "SUCCESS" in promtool("test", "rules", PROMETHEUS / "alerts.test.yml").stdout


@needs_promtool
def test_the_example_prometheus_config_is_valid() -> None:
    promtool("check", "config", PROMETHEUS / "prometheus.yml")
    jobs = {j["job_name"] for j in load_yaml(PROMETHEUS / "prometheus.yml")["scrape_configs"]}
    assert "xnai" in jobs  # the job XoeTargetDown watches


# Grafana


def test_dashboard_panels_are_complete() -> None:
    dash = dashboard()
    assert dash["uid"] and dash["title"] == "Xoe-NovAi"
    panels = dash["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    uid = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")["datasources"][0]
    for p in panels:
        assert p["datasource"] == {"type": "prometheus", "uid": uid["uid"]}, p["title"]
        assert p["targets"], p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
        for t in p["targets"]:
            assert t["expr"].strip() and t["datasource"] == p["datasource"], p["title"]
        pos = p["gridPos"]
        assert pos["x"] + pos["w"] <= 24 and pos["w"] > 0 and pos["h"] > 0, p["title"]


def test_dashboard_panels_do_not_overlap() -> None:
    cells: dict[tuple[int, int], str] = {}
    for p in dashboard()["panels"]:
        g = p["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = p["title"]


def test_dashboard_uses_only_catalogue_metrics_and_covers_the_seed() -> None:
    used: set[str] = set()
    for panel_id, expr in panel_exprs():
        assert unknown_metrics(expr) == [], (panel_id, expr)
        used |= {name for name, _ in selectors(expr)}
    for needed in (
        "xoe_cpu_usage_percent",
        "xoe_memory_usage_bytes",
        "xoe_disk_usage_percent",
        "xoe_network_rx_bytes_total",
        "xoe_network_tx_bytes_total",
        "xoe_query_latency_seconds_bucket",
        "xoe_query_count_total",
        "xoe_component_health_status",
        "xoe_circuit_breaker_state",
        "xoe_security_violation_total",
        "xoe_ingest_chunks_total",
        "xoe_generation_queue_depth",
        "xoe_cache_requests_total",
        "xoe_anomaly_score",
    ):
        assert needed in used, needed
    assert any("histogram_quantile(0.95" in e and "query_latency" in e for _, e in panel_exprs())
    tables = [p for p in dashboard()["panels"] if p["type"] == "table"]
    assert any("xoe_component_health_status" in t["expr"] for p in tables for t in p["targets"])


@needs_promtool
def test_every_panel_expression_is_valid_promql(tmp_path: Path) -> None:
    rules = [
        {"record": f"xoe_dashboard:panel_{panel_id}_{n}", "expr": expr}
        for n, (panel_id, expr) in enumerate(panel_exprs())
    ]
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    run = promtool("check", "rules", path)
    assert f"SUCCESS: {len(rules)} rules found" in run.stdout


def test_promtool_refuses_invalid_promql(tmp_path: Path) -> None:
    if PROMTOOL is None:
        pytest.skip("promtool is missing")
    path = tmp_path / "bad.yml"
    bad = {"groups": [{"name": "g", "rules": [{"record": "x:y", "expr": "rate(xoe_x[5m]"}]}]}
    path.write_text(yaml.safe_dump(bad))
    run = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True)
    assert run.returncode != 0


def test_grafana_provisioning_points_at_the_dashboard() -> None:
    sources = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")
    assert sources["apiVersion"] == 1 and sources["datasources"][0]["type"] == "prometheus"
    providers = load_yaml(GRAFANA / "provisioning" / "dashboards" / "xoe-novai.yml")
    assert providers["apiVersion"] == 1
    assert providers["providers"][0]["type"] == "file"
    assert providers["providers"][0]["options"]["path"]


# The reference page


def test_metrics_page_lists_every_metric_and_alert() -> None:
    page = METRICS_PAGE.read_text(encoding="utf-8")
    missing = [s.name for s in CATALOGUE if f"`{s.name}`" not in page]
    assert missing == []
    missing_alerts = [r["alert"] for r in alert_rules() if f"`{r['alert']}`" not in page]
    assert missing_alerts == []
