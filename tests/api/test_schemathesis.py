"""Schemathesis over /openapi.json, as an admin, a viewer and an anonymous caller: every
check, the coverage, fuzzing and stateful phases, against the app in process (fake model).

0 failures means the server answers only what its OpenAPI document says: each status and
media type documented, every schema-valid request accepted and every invalid one refused.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis.configuration import set_hypothesis_home_dir
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, StopReason, events, from_schema

from tests.api.conftest import bearer, token_for
from xnai.api.app import create_app
from xnai.bootstrap import Container
from xnai.domain.rbac import Role

MAX_EXAMPLES = 5  # per operation and phase: the three runs take well under a minute
PHASES = ("coverage", "fuzzing", "stateful")


def config(headers: dict[str, str]) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "seed": 20240611,
            "headers": headers,
            "workers": 1,
            "checks": {"enabled": True},  # all of them, positive_data_acceptance included
            "phases": {name: {"enabled": True} for name in PHASES},
            # No example database in the working directory: each run stands alone.
            "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
        }
    )


def run(app: Any, headers: dict[str, str]) -> tuple[list[str], dict[str, Status], StopReason]:
    """Every failure of one run, each phase's status and why the run stopped."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config(headers))
    failures: collections.Counter[str] = collections.Counter()
    phases: dict[str, Status] = {}
    stop = None
    for event in from_schema(schema).execute():
        recorder = getattr(event, "recorder", None)
        if recorder is not None:
            for case_id, checks in recorder.checks.items():
                label = recorder.cases[case_id].value.operation.label
                for check in checks:
                    if check.failure_info is not None:
                        failure = check.failure_info.failure
                        failures[f"{label}: {check.name}: {failure.title}: {failure.message}"] += 1
        if isinstance(event, events.PhaseFinished):
            phases[event.phase.name.value] = event.status
        elif isinstance(event, events.NonFatalError):
            failures[f"{event.label}: error: {event.value!r}"] += 1
        elif isinstance(event, events.FatalError):
            failures[f"fatal: {event.exception!r}"] += 1
        elif isinstance(event, events.EngineFinished):
            failures.update(f"after run: {f.title}: {f.message}" for f in event.failures)
            stop = event.stop_reason
    assert stop is not None
    return [f"{n} x {text}" for text, n in sorted(failures.items())], phases, stop


@pytest.fixture(autouse=True)
def _hypothesis_home(tmp_path: Path) -> Iterator[None]:
    """Hypothesis keeps its files (a cache of constants) in a temporary directory, not in
    the working directory: nothing is left behind and no run sees another's files."""
    set_hypothesis_home_dir(tmp_path / "hypothesis")
    yield
    set_hypothesis_home_dir(None)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "role", [Role.ADMIN, Role.VIEWER, None], ids=["admin", "viewer", "anonymous"]
)
def test_schemathesis_finds_nothing(seeded: Container, role: Role | None) -> None:
    seeded.startup.warm_up()  # the fake model: /ready answers 200
    headers = {} if role is None else bearer(token_for(seeded, role.value, role))
    failures, phases, stop = run(create_app(seeded, warm=False), headers)
    assert failures == []
    assert stop is StopReason.COMPLETED
    for name in PHASES:
        assert phases.get(name) is Status.SUCCESS, (name, phases)
