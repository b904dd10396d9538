"""A blocking iterator (the model's answer, synthesized speech) consumed from async code."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import TypeVar, cast

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Failed:
    error: BaseException


_END = object()


async def drain(iterator: Iterator[T]) -> AsyncIterator[T]:
    """The items of ``iterator``, produced on a worker thread as they come.

    When the consumer stops early (the user stops the answer, or the connection is gone),
    the worker stops after the item it is producing and closes ``iterator`` on its own
    thread, so whatever it holds (a generation slot) is released. An exception of the
    iterator is raised to the consumer.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    stop = threading.Event()

    def put(item: object) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the event loop is gone: nobody is listening any more
            stop.set()

    def produce() -> None:
        try:
            for item in iterator:
                if stop.is_set():
                    break
                put(item)
        except BaseException as exc:  # handed to the consumer
            put(_Failed(exc))
            return
        finally:
            if stop.is_set():
                close = getattr(iterator, "close", None)
                if callable(close):
                    close()
        put(_END)

    threading.Thread(target=produce, name="xnai-chat-stream", daemon=True).start()
    try:
        while True:
            item = await queue.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield cast(T, item)
    finally:
        stop.set()
