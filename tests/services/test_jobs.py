"""Periodic jobs run when due, remember their runs across restarts, and survive failures."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.clock import FakeClock
from xnai.adapters.storage.state import JsonStateFile
from xnai.services.jobs import Job, PeriodicJobs

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def _jobs(state: JsonStateFile, clock: FakeClock[datetime], runs: list[str]) -> PeriodicJobs:
    def weekly() -> None:
        runs.append("weekly")

    def daily() -> None:
        runs.append("daily")

    return PeriodicJobs(
        [Job("weekly", timedelta(days=7), weekly), Job("daily", timedelta(days=1), daily)],
        last_run=lambda name: state.get(f"job:{name}"),
        remember=lambda name, stamp: state.set(f"job:{name}", stamp),
        clock=clock,
    )


def test_jobs_run_when_due_and_a_restart_remembers(tmp_path: Path) -> None:
    state, clock, runs = JsonStateFile(tmp_path / "state.json"), FakeClock(T0), []
    jobs = _jobs(state, clock, runs)
    assert jobs.tick() == ["weekly", "daily"]
    assert jobs.tick() == []
    clock.now = T0 + timedelta(days=1)
    assert jobs.tick() == ["daily"]
    restarted = _jobs(JsonStateFile(tmp_path / "state.json"), clock, runs)
    assert restarted.tick() == []
    clock.now = T0 + timedelta(days=7, seconds=1)
    assert restarted.tick() == ["weekly", "daily"]
    assert runs == ["weekly", "daily", "daily", "weekly", "daily"]
    assert (tmp_path / "state.json").stat().st_mode & 0o777 == 0o600


def test_a_failing_job_is_retried_and_does_not_stop_others(tmp_path: Path) -> None:
    state, clock = JsonStateFile(tmp_path / "s.json"), FakeClock(T0)
    attempts: list[int] = []

    def flaky() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("disk full")

    jobs = PeriodicJobs(
        [Job("flaky", timedelta(hours=1), flaky), Job("ok", timedelta(hours=1), lambda: None)],
        last_run=state.get,
        remember=state.set,
        clock=clock,
    )
    assert jobs.tick() == ["ok"]
    assert jobs.tick() == ["flaky"]
    assert len(attempts) == 2


def test_background_thread_runs_and_stops(tmp_path: Path) -> None:
    state, done = JsonStateFile(tmp_path / "s.json"), threading.Event()
    jobs = PeriodicJobs(
        [Job("once", timedelta(days=1), done.set)],
        last_run=state.get,
        remember=state.set,
        poll_seconds=0.01,
    )
    jobs.start()
    assert done.wait(5)
    jobs.stop()
    assert state.get("once") is not None
