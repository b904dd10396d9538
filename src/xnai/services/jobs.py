"""Periodic jobs of a server process (compliance runs, retention), with remembered last runs.

A job runs when its interval has passed since its last recorded run, so a restart does not
rerun a weekly job and a long downtime triggers it at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

log = logging.getLogger("xnai.jobs")


@dataclass(frozen=True, slots=True)
class Job:
    """A named task to run every ``interval``."""

    name: str
    interval: timedelta
    run: Callable[[], Any]


class PeriodicJobs:
    """Runs due jobs; ``tick`` for one pass, ``start``/``stop`` for a background thread."""

    def __init__(
        self,
        jobs: list[Job],
        *,
        last_run: Callable[[str], str | None],
        remember: Callable[[str, str], None],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        poll_seconds: float = 60.0,
    ) -> None:
        self.jobs = jobs
        self._last_run = last_run
        self._remember = remember
        self._clock = clock
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def due(self) -> list[Job]:
        """Jobs whose interval has passed since their last run (or that never ran)."""
        now = self._clock()
        out = []
        for job in self.jobs:
            stamp = self._last_run(job.name)
            if stamp is None or datetime.fromisoformat(stamp) + job.interval <= now:
                out.append(job)
        return out

    def tick(self) -> list[str]:
        """Run every due job once; a failing job is logged and retried at the next poll."""
        ran = []
        for job in self.due():
            try:
                job.run()
            except Exception:
                log.exception("scheduled job %s failed", job.name)
                continue
            self._remember(job.name, self._clock().isoformat(timespec="seconds"))
            ran.append(job.name)
        return ran

    def start(self) -> None:
        """Poll in a daemon thread until ``stop``."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="xnai-jobs", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling (a running job finishes first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.tick()
            self._stop.wait(self.poll_seconds)
