"""A circuit breaker with pybreaker's semantics that never holds its lock during a call.

CLOSED counts consecutive failures; ``fail_max`` of them open it. OPEN refuses calls until
``reset_timeout`` has passed; then HALF_OPEN lets exactly one trial call through: success
closes the breaker, failure opens it again with a fresh timer. pybreaker holds its lock for
the whole call and has no asyncio support, so a hung call there blocks every other caller.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum
from typing import TypeVar

from xnai.domain.errors import CircuitOpenError, TransientModelError, XnaiError
from xnai.domain.metrics import Metrics

T = TypeVar("T")
Clock = Callable[[], float]


class BreakerState(IntEnum):
    """States of a circuit breaker, valued as ``xoe_circuit_breaker_state`` reports them."""

    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: unreachable, timed out or failing on the server's side; never a
    rejected request, an invalid reply or an open breaker."""
    return isinstance(exc, TransientModelError) and not isinstance(exc, CircuitOpenError)


def counts_as_failure(exc: BaseException) -> bool:
    """Whether a call that raised ``exc`` counts against the backend for the breaker: a
    transient failure or an unexpected crash. A rejected request (HTTP 4xx, invalid
    input) means the backend answered, so it counts as a success, as in pybreaker with
    excluded exceptions."""
    return is_transient(exc) or not isinstance(exc, XnaiError)


@dataclass(eq=False)
class Ticket:
    """Permission for one call; its outcome is reported once (later reports are ignored)."""

    epoch: int
    trial: bool
    done: bool = False


class Trial:
    """The half-open trial call reserved by ``CircuitBreaker.check`` for one caller: its
    ticket is used for that caller's call, or released when the caller makes none."""

    def __init__(self, breaker: CircuitBreaker, ticket: Ticket) -> None:
        self.breaker = breaker
        self.ticket = ticket

    def release(self) -> None:
        """Give the trial back unless its call has reported an outcome (idempotent)."""
        self.breaker.release(self.ticket)


class CircuitBreaker:
    """Thread-safe circuit breaker with an injectable clock.

    CLOSED counts consecutive failures; ``fail_max`` of them open it. OPEN refuses calls
    (CircuitOpenError) until ``reset_timeout`` has passed; then it is HALF_OPEN and exactly
    one caller gets a trial ticket (reserved by ``check`` or taken by ``acquire``) while
    the others are refused: the trial's success closes the breaker, its failure opens it
    again with a fresh timer. Outcomes of calls that started before the latest state change
    are ignored.
    """

    def __init__(
        self,
        name: str = "llm",
        *,
        fail_max: int = 3,
        reset_timeout: float = 60.0,
        clock: Clock = time.monotonic,
        metrics: Metrics | None = None,
    ) -> None:
        if fail_max < 1 or reset_timeout <= 0:
            raise ValueError("fail_max must be >= 1 and reset_timeout > 0")
        self.name = name
        self.fail_max = fail_max
        self.reset_timeout = reset_timeout
        self.metrics = metrics
        self._clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._epoch = 0
        self._trial_out = False

    @contextmanager
    def _changing(self) -> Iterator[None]:
        """Hold the lock; report the state after releasing it when it changed meanwhile
        (metrics are never called under the lock, and the last report is the latest state)."""
        with self._lock:
            epoch = self._epoch
            self._tick()
            yield
            changed = self._epoch != epoch
        if changed:
            self._report(self._state)

    @property
    def state(self) -> BreakerState:
        """The current state (OPEN turns HALF_OPEN once the reset timeout has passed)."""
        with self._changing():
            return self._state

    @property
    def failures(self) -> int:
        """Consecutive failures counted while closed."""
        return self._failures

    def retry_after(self) -> int:
        """Whole seconds until a call may be tried again (at least 1)."""
        with self._changing():
            return self._retry_after()

    def _retry_after(self) -> int:
        if self._state is BreakerState.OPEN:
            left = self._opened_at + self.reset_timeout - self._clock()
            return max(1, math.ceil(left))
        return 1

    def check(self) -> Trial | None:
        """Raise CircuitOpenError when a call now would be refused. Half-open, the caller
        that passes reserves the one trial call at once (the Trial returned, to be used or
        released), so every caller after it is refused at once instead of waiting for the
        trial's outcome; closed, nothing is reserved (None)."""
        with self._changing():
            refused = self._state is BreakerState.OPEN or (
                self._state is BreakerState.HALF_OPEN and self._trial_out
            )
            reserved: Ticket | None = None
            if self._state is BreakerState.HALF_OPEN and not refused:
                self._trial_out = True
                reserved = Ticket(self._epoch, trial=True)
            retry_after = self._retry_after()
        if refused:
            self._count_refusal()
            raise CircuitOpenError(retry_after)
        return None if reserved is None else Trial(self, reserved)

    def acquire(self) -> Ticket:
        """A ticket for one call, or CircuitOpenError when the call must not be made."""
        with self._changing():
            ticket: Ticket | None = None
            if self._state is BreakerState.CLOSED:
                ticket = Ticket(self._epoch, trial=False)
            elif self._state is BreakerState.HALF_OPEN and not self._trial_out:
                self._trial_out = True
                ticket = Ticket(self._epoch, trial=True)
            retry_after = self._retry_after()
        if ticket is None:
            self._count_refusal()
            raise CircuitOpenError(retry_after)
        return ticket

    def success(self, ticket: Ticket) -> None:
        """The call of ``ticket`` succeeded: a trial closes the breaker; while closed the
        failure count starts again."""
        with self._changing():
            if not self._settle(ticket):
                return
            if ticket.trial:
                self._set(BreakerState.CLOSED)
            elif self._state is BreakerState.CLOSED:
                self._failures = 0

    def failure(self, ticket: Ticket) -> None:
        """The call of ``ticket`` failed: a trial re-opens the breaker with a fresh timer;
        while closed the ``fail_max``-th consecutive failure opens it."""
        with self._changing():
            if not self._settle(ticket):
                return
            if ticket.trial:
                self._open()
            elif self._state is BreakerState.CLOSED:
                self._failures += 1
                if self._failures >= self.fail_max:
                    self._open()

    def release(self, ticket: Ticket) -> None:
        """The call of ``ticket`` ended without an outcome (abandoned): a trial frees the
        half-open state for another trial."""
        with self._changing():
            if self._settle(ticket) and ticket.trial:
                self._trial_out = False

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` under the breaker (on the caller's thread) and record its outcome."""
        ticket = self.acquire()
        try:
            result = fn()
        except Exception as exc:
            self.record(ticket, exc)
            raise
        except BaseException:
            self.release(ticket)
            raise
        self.success(ticket)
        return result

    def record(self, ticket: Ticket, exc: BaseException) -> None:
        """Record the outcome of a call that raised ``exc`` (see ``counts_as_failure``)."""
        if counts_as_failure(exc):
            self.failure(ticket)
        else:
            self.success(ticket)

    def _settle(self, ticket: Ticket) -> bool:
        """Mark ``ticket`` done; True when its outcome still matters (under the lock)."""
        if ticket.done:
            return False
        ticket.done = True
        return ticket.epoch == self._epoch

    def _tick(self) -> None:
        if (
            self._state is BreakerState.OPEN
            and self._clock() - self._opened_at >= self.reset_timeout
        ):
            self._set(BreakerState.HALF_OPEN)

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._set(BreakerState.OPEN)

    def _set(self, state: BreakerState) -> None:
        self._state = state
        self._epoch += 1
        self._failures = 0
        self._trial_out = False

    def publish(self) -> None:
        """Report the current state to the metrics (done on every change after this)."""
        self._report(self.state)

    def _report(self, state: BreakerState) -> None:
        if self.metrics is not None:
            self.metrics.set("xoe_circuit_breaker_state", float(state), backend=self.name)

    def _count_refusal(self) -> None:
        if self.metrics is not None:
            self.metrics.inc("xoe_error_count_total", component="llm", type="circuit_open")
