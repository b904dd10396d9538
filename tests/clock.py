"""The fake clock of the tests: it moves only when a test moves it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

T = TypeVar("T", float, datetime)

#: Where a wall clock starts unless a test says otherwise.
WALL_START = datetime(2026, 11, 26, 9, 0, 0, tzinfo=UTC)


class FakeClock(Generic[T]):
    """A clock read by calling it: seconds (a monotonic or epoch clock) or datetimes."""

    def __init__(self, start: T) -> None:
        self.now: T = start

    def __call__(self) -> T:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        if isinstance(self.now, datetime):
            self.now = self.now + timedelta(seconds=seconds)
        else:
            self.now = self.now + seconds
