"""bench/locustfile.py run for real (a few seconds) against the app on a loopback port, and
the load section's CSV reading and report. Locust runs in a subprocess: importing it here
would monkey-patch this process (gevent)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
_VENV_LOCUST = Path(sys.executable).with_name("locust")
LOCUST = str(_VENV_LOCUST) if _VENV_LOCUST.is_file() else shutil.which("locust")

pytestmark = pytest.mark.skipif(LOCUST is None, reason="locust is not installed (dev extra)")


def bench_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def locust(host: str, key: str | None, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XNAI_LOAD")}
    env.pop("XNAI_API_KEY", None)
    if key is not None:
        env["XNAI_API_KEY"] = key
    assert LOCUST is not None
    cmd = [LOCUST, "-f", str(ROOT / "bench" / "locustfile.py"), "--host", host, *args]
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("host", "key", "args", "reason"),
    [
        ("http://192.0.2.10:8000", "k", ("--headless", "-t", "2s"), "loopback"),
        ("http://127.0.0.1:9", "k", ("--headless",), "--run-time"),
        ("http://127.0.0.1:9", "k", ("--headless", "-t", "2h"), "--run-time"),
        ("http://127.0.0.1:9", None, ("--headless", "-t", "2s"), "XNAI_API_KEY"),
    ],
)
def test_the_locustfile_refuses_unbounded_or_remote_runs(
    host: str, key: str | None, args: tuple[str, ...], reason: str, tmp_path: Path
) -> None:
    done = locust(host, key, *args, cwd=tmp_path)
    assert done.returncode != 0
    assert reason in done.stderr


@pytest.mark.slow
def test_a_short_headless_run_reports_both_kinds_of_queries(
    live_url: str, api_key: str, tmp_path: Path
) -> None:
    prefix = tmp_path / "run"
    done = locust(
        live_url,
        api_key,
        "--headless",
        "-u",
        "4",
        "-r",
        "4",
        "-t",
        "4s",
        "--csv",
        str(prefix),
        "--only-summary",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    run = bench_module("run")
    stats = run.locust_stats(Path(f"{prefix}_stats.csv"))
    assert set(stats) == {"retrieval", "answer", "all"}
    assert stats["retrieval"]["requests"] >= 1 and stats["answer"]["requests"] >= 1
    assert stats["all"]["error_rate"] == 0.0
    assert stats["all"]["p50_ms"] <= stats["all"]["p95_ms"] <= stats["all"]["p99_ms"]
    assert run.locust_failures(Path(f"{prefix}_failures.csv")) == []
    data = {
        "users": 4,
        "spawn_rate": 4,
        "seconds": 4,
        "think_time_s": [0.5, 2.0],
        "weights": {"retrieval": 4, "answer": 1},
        "answer_max_tokens": 32,
        "requests": stats,
        "failures": [{"name": "answer", "error": "429 with Retry-After", "occurrences": 3}],
    }
    page = bench_module("report").load(data)
    text = "\n".join(page)
    assert "| retrieval only |" in text and "| end to end |" in text
    assert "429 with Retry-After" in text


def test_failures_are_read_with_locusts_wrapper_removed(tmp_path: Path) -> None:
    path = tmp_path / "run_failures.csv"
    path.write_text(
        "Method,Name,Error,Occurrences\n"
        "POST,answer,CatchResponseError('429 with Retry-After'),11\n"
        "POST,retrieval,\"HTTPError('503 Server Error')\",2\n",
        encoding="utf-8",
    )
    assert bench_module("run").locust_failures(path) == [
        {"name": "answer", "error": "429 with Retry-After", "occurrences": 11},
        {"name": "retrieval", "error": "HTTPError('503 Server Error')", "occurrences": 2},
    ]
    assert bench_module("run").locust_failures(tmp_path / "missing.csv") == []
