"""Backpressure for the language model: a few generations run, a bounded queue waits, the
rest are refused at once (HTTP 429) instead of waiting without limit.

Admission is by expected wait: a request joins the queue only while the time it would wait
for a slot (the requests ahead of it, in rounds of ``max_concurrent``, times the running
average of generation times) fits ``max_wait_s``; otherwise it is refused with that
estimate as its Retry-After.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol, TypeVar

from xnai.domain.errors import QueueFullError
from xnai.domain.metrics import Metrics

T = TypeVar("T")

# The admission of the request being served, set while its generation runs (see
# ``Admission.run`` and ``bind``), so the model wrapper does not admit it a second time.
_CURRENT: ContextVar[Admission | None] = ContextVar("xnai_generation_admission", default=None)

# Weight of the newest generation time in the running average behind Retry-After.
_EWMA_WEIGHT = 0.3
MAX_RETRY_AFTER = 120


class Claim(Protocol):
    """What a ``precheck`` may reserve for the request it lets in (the circuit breaker's
    half-open trial): used by that request's generation, released with its admission."""

    def release(self) -> None:
        """Give the reservation back when it was not used (idempotent)."""


class GenerationLimiter:
    """At most ``max_concurrent`` generations run at once and ``queue_size`` more wait for a
    slot, as long as their expected wait fits ``max_wait_s``; a request beyond that gets
    QueueFullError with its expected wait as the Retry-After.

    A request is *admitted* (counted in the queue depth) from ``admit`` until its admission
    is released; a *slot* is held while the model generates for it.
    """

    def __init__(
        self,
        max_concurrent: int = 1,
        queue_size: int = 8,
        *,
        metrics: Metrics | None = None,
        precheck: Callable[[], Claim | None] | None = None,
        max_wait_s: float | None = None,
        initial_estimate_s: float = 1.0,
    ) -> None:
        if max_concurrent < 1 or queue_size < 0:
            raise ValueError("max_concurrent must be >= 1 and queue_size >= 0")
        self.max_concurrent = max_concurrent
        self.queue_size = queue_size
        self.max_wait_s = max_wait_s
        self.metrics = metrics
        self.precheck = precheck
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(max_concurrent)
        self._admitted = 0
        self._running = 0
        self._average_s = initial_estimate_s

    @property
    def capacity(self) -> int:
        """Requests admitted at most: running plus waiting."""
        return self.max_concurrent + self.queue_size

    @property
    def depth(self) -> int:
        """Requests admitted now (waiting or running)."""
        return self._admitted

    @property
    def running(self) -> int:
        """Generations holding a slot now."""
        return self._running

    def expected_wait_s(self, ahead: int | None = None) -> float:
        """Seconds a new request would wait for a slot with ``ahead`` requests admitted
        before it (default: now): none while a slot is free, then one average generation
        time for each round of ``max_concurrent`` requests in front of it."""
        ahead = self._admitted if ahead is None else ahead
        rounds = math.ceil(max(0, ahead - self.max_concurrent + 1) / self.max_concurrent)
        return rounds * self._average_s

    def retry_after(self) -> int:
        """Seconds after which a refused request may find room: its expected wait now,
        1 to 120."""
        return _seconds(self.expected_wait_s())

    def admit(self) -> Admission:
        """Take a place in the queue, or raise at once: whatever ``precheck`` raises (an
        open circuit breaker), else QueueFullError when every place is taken. What the
        precheck reserves (a half-open trial) goes with the admission."""
        claim = self.precheck() if self.precheck is not None else None
        with self._lock:
            ahead = self._admitted
            wait = self.expected_wait_s(ahead)
            full = ahead >= self.capacity or (
                self.max_wait_s is not None and wait > self.max_wait_s
            )
            if not full:
                self._admitted += 1
        if full:
            if claim is not None:
                claim.release()
            self._report_rejection()
            raise QueueFullError(_seconds(wait))
        self.publish()
        return Admission(self, claim)

    def publish(self) -> None:
        """Report the queue depth to the metrics (done on every change after this)."""
        if self.metrics is not None:
            # Read after the change, outside the lock: the last report is the latest depth.
            self.metrics.set("xoe_generation_queue_depth", self._admitted)

    def _leave(self) -> None:
        with self._lock:
            self._admitted -= 1
        self.publish()

    @contextmanager
    def generation(self) -> Iterator[Slot]:
        """Admission (unless this request was admitted already) and a slot (taken with
        ``Slot.ensure``) for one generation; the slot may be released sooner, when the
        model has finished."""
        current = _CURRENT.get()
        own = None if current is not None and current.limiter is self else self.admit()
        try:
            slot = Slot(self, own or current)
            try:
                yield slot
            finally:
                slot.release()
        finally:
            if own is not None:
                own.release()

    def _acquire_slot(self) -> None:
        self._slots.acquire()
        with self._lock:
            self._running += 1

    def _release_slot(self, held_s: float) -> None:
        with self._lock:
            self._running -= 1
            self._average_s += _EWMA_WEIGHT * (held_s - self._average_s)
        self._slots.release()

    def _report_rejection(self) -> None:
        if self.metrics is not None:
            self.metrics.inc("xoe_generation_rejected_total")
            self.metrics.inc("xoe_error_count_total", component="generation", type="queue_full")


def _seconds(wait_s: float) -> int:
    """A Retry-After value: whole seconds, 1 to 120."""
    return max(1, min(MAX_RETRY_AFTER, math.ceil(wait_s)))


class Slot:
    """Permission to generate now; ``ensure`` waits for a free slot, ``release`` frees it
    (both idempotent, so an early release by the finished model is safe)."""

    def __init__(self, limiter: GenerationLimiter, admission: Admission | None = None) -> None:
        self._limiter = limiter
        self._admission = admission
        self._lock = threading.Lock()
        self._held_since: float | None = None

    def take_claim(self) -> Claim | None:
        """What the precheck reserved at this request's admission, handed out once."""
        return None if self._admission is None else self._admission.take_claim()

    @property
    def held(self) -> bool:
        """Whether this slot is taken now."""
        return self._held_since is not None

    def ensure(self) -> None:
        """Wait until a slot is free and take it (no-op while held)."""
        with self._lock:
            if self._held_since is not None:
                return
            self._limiter._acquire_slot()
            self._held_since = time.monotonic()

    def release(self) -> None:
        """Free the slot (no-op when not held)."""
        with self._lock:
            if self._held_since is None:
                return
            held_s = time.monotonic() - self._held_since
            self._held_since = None
            self._limiter._release_slot(held_s)


class Admission:
    """One request's place in the queue; released exactly once."""

    def __init__(self, limiter: GenerationLimiter, claim: Claim | None = None) -> None:
        self.limiter = limiter
        self._claim = claim
        self._taken = False
        self._released = False
        self._lock = threading.Lock()

    def take_claim(self) -> Claim | None:
        """The reservation made at admission, once (later calls get None)."""
        with self._lock:
            if self._taken or self._released:
                return None
            self._taken = True
            return self._claim

    def release(self) -> None:
        """Leave the queue and give back a reservation no generation took (idempotent)."""
        with self._lock:
            if self._released:
                return
            self._released = True
            # A reservation taken by the generation is that call's to settle.
            unused = None if self._taken else self._claim
        try:
            if unused is not None:
                unused.release()
        finally:
            self.limiter._leave()

    def __enter__(self) -> Admission:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        # A request cancelled between admission and generation must not keep its place.
        self.release()

    def hold(self, fn: Callable[..., T], *args: Any) -> T:
        """Call ``fn`` (work before the generation); release the admission if it fails."""
        try:
            return fn(*args)
        except BaseException:
            self.release()
            raise

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Call ``fn`` as this request's generation, then release the admission."""
        token = _CURRENT.set(self)
        try:
            return fn(*args)
        finally:
            _CURRENT.reset(token)
            self.release()

    def bind(self, iterator: Iterator[T]) -> Iterator[T]:
        """``iterator`` run as this request's generation (on whichever thread advances it);
        the admission is released when it ends, is closed or is dropped."""
        return _Bound(self, iterator)


class _Bound(Iterator[T]):
    """An iterator that marks each step as the work of one admission."""

    def __init__(self, admission: Admission, inner: Iterator[T]) -> None:
        self._admission = admission
        self._inner = inner

    def __next__(self) -> T:
        token = _CURRENT.set(self._admission)
        try:
            return next(self._inner)
        except BaseException:
            self.close()
            raise
        finally:
            _CURRENT.reset(token)

    def close(self) -> None:
        """Stop the inner iterator and leave the queue."""
        try:
            close = getattr(self._inner, "close", None)
            if callable(close):
                close()
        finally:
            self._admission.release()

    def __del__(self) -> None:
        # A server drops the iterator of a response whose client went away.
        self.close()
