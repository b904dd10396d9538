"""Blocking iterators consumed from async code: order, errors, early stop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from xnai.ui.streaming import drain


class Counting(Iterator[int]):
    """Yields 0, 1, 2 ... slowly; remembers whether it was closed and on which thread."""

    def __init__(self, limit: int, fail_at: int | None = None) -> None:
        self.limit, self.fail_at, self.n = limit, fail_at, 0
        self.closed_on: str | None = None

    def __next__(self) -> int:
        time.sleep(0.01)
        if self.n == self.fail_at:
            raise ValueError("boom")
        if self.n >= self.limit:
            raise StopIteration
        self.n += 1
        return self.n - 1

    def close(self) -> None:
        self.closed_on = threading.current_thread().name


async def collect(it: Iterator[int], stop_after: int | None = None) -> list[int]:
    out = []
    async for item in drain(it):
        out.append(item)
        if stop_after is not None and len(out) >= stop_after:
            break
    return out


def test_items_arrive_in_order_off_the_event_loop() -> None:
    assert asyncio.run(collect(Counting(5))) == [0, 1, 2, 3, 4]


def test_an_error_of_the_iterator_reaches_the_consumer() -> None:
    with pytest.raises(ValueError, match="boom"):
        asyncio.run(collect(Counting(5, fail_at=2)))


def test_stopping_early_closes_the_iterator_on_its_worker_thread() -> None:
    it = Counting(1000)
    assert asyncio.run(collect(it, stop_after=3)) == [0, 1, 2]
    deadline = time.monotonic() + 2
    while it.closed_on is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert it.closed_on == "xnai-chat-stream"
    assert it.n < 50  # it stopped soon after, not at the end
