"""bench/askers.py against the app on a loopback port (fake model), and the load section's
counting of served, refused and failed requests."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from tests.api.conftest import bearer, token_for
from tests.api.test_locustfile import ROOT, bench_module
from xnai.bootstrap import Container

QUESTION = "At what rpm does the coolant pump run?"


def test_askers_see_the_sources_before_the_first_token(live_url: str, seeded: Container) -> None:
    askers = bench_module("askers")
    headers = bearer(token_for(seeded, "admin"))
    asked, wall = asyncio.run(
        askers.ask_all(f"{live_url}/v1/query", [QUESTION] * 3, 2, 16, headers)
    )
    assert [a.status for a in asked] == [200, 200, 200]
    for a in asked:
        assert a.answered and a.text.strip() and a.sources
        assert 0 < a.sources_s <= a.first_token_s <= a.total_s <= wall
    figures = askers.summary(asked, wall, 2)
    assert figures["answered"] == 3 and figures["statuses"] == {"200": 3}
    assert figures["answers_per_minute"] == 3 * 60 / wall
    assert figures["sources_first_ms_p50"] <= 1000 * figures["time_to_first_token_s_p50"]


def test_a_refused_question_keeps_its_status_and_retry_after(
    live_url: str, seeded: Container
) -> None:
    askers = bench_module("askers")
    asked, _ = asyncio.run(
        askers.ask_all(f"{live_url}/v1/query", [QUESTION], 1, 16, {"Authorization": "Bearer x"})
    )
    assert asked[0].status == 401 and not asked[0].answered
    assert asked[0].error and asked[0].first_token_s is None
    figures = askers.summary(asked, 1.0, 1)
    assert figures["answered"] == 0 and figures["answers_per_minute"] == 0
    assert figures["statuses"] == {"401": 1} and figures["time_to_first_token_s_p50"] is None


def test_load_outcomes_count_refusals_apart_from_errors() -> None:
    run = bench_module("run")
    requests = {
        "answer": {"requests": 40, "failures": 31},
        "retrieval": {"requests": 200, "failures": 2},
    }
    failures = [
        {"name": "answer", "error": "429 with Retry-After", "occurrences": 30},
        {"name": "answer", "error": "429 without Retry-After", "occurrences": 1},
        {"name": "retrieval", "error": "HTTP 500", "occurrences": 2},
    ]
    assert run.load_outcomes(requests, failures) == {
        "served_answers": 9,
        "served_retrievals": 198,
        "refused_with_retry_after": 30,
        "unexpected_errors": 3,
    }


def locustfile_call(expression: str) -> object:
    """``expression`` evaluated in a child process that imports the locustfile (locust
    patches the process it is imported into)."""
    code = (
        "import json, runpy, sys; "
        f"m = runpy.run_path({str(ROOT / 'bench' / 'locustfile.py')!r}); "
        f"print(json.dumps({expression}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parent,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_locustfile_reads_a_think_time_and_names_refusals() -> None:
    assert locustfile_call(
        "[m['think_time'](None), m['think_time']('30-60'), m['think_time']('5'), "
        "m['refusal_name']('12'), m['refusal_name'](None), m['refusal_name']('soon')]"
    ) == [
        [0.5, 2.0],
        [30.0, 60.0],
        [5.0, 5.0],
        "429 with Retry-After",
        "429 without Retry-After",
        "429 without Retry-After",
    ]
