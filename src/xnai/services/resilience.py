"""Guarded calls to the language model: the generation queue, a circuit breaker per backend
(see ``breaker``), retries on transient failures, and a hard deadline with the call running
off the caller's thread."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from xnai.domain.errors import (
    CircuitOpenError,
    ModelError,
    ModelServerError,
    ModelTimeoutError,
    ModelUnavailableError,
    XnaiError,
)
from xnai.domain.metrics import Metrics
from xnai.domain.models import ChatMessage
from xnai.domain.ports import ChatModel
from xnai.services.breaker import (
    BreakerState,
    CircuitBreaker,
    Ticket,
    Trial,
    counts_as_failure,
    is_transient,
)
from xnai.services.delegation import Through
from xnai.services.generation import GenerationLimiter, Slot

__all__ = [
    "BreakerState",
    "CircuitBreaker",
    "DeadlineStream",
    "GuardedChatModel",
    "LateMetrics",
    "RetryPolicy",
    "counts_as_failure",
    "error_kind",
    "is_transient",
]

T = TypeVar("T")


def error_kind(exc: BaseException) -> str:
    """A bounded label for ``xoe_error_count_total{type}``."""
    kinds: list[tuple[type[BaseException], str]] = [
        (CircuitOpenError, "circuit_open"),
        (ModelTimeoutError, "timeout"),
        (ModelUnavailableError, "unavailable"),
        (ModelServerError, "server_error"),
        (ModelError, "rejected"),
        (XnaiError, "invalid"),
    ]
    return next((kind for cls, kind in kinds if isinstance(exc, cls)), "crash")


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and jitter, only on transient failures."""

    attempts: int = 2
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def retrying(self) -> Retrying:
        """A tenacity controller for one operation."""
        return Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential_jitter(
                multiplier=self.backoff_s, max=self.max_backoff_s, jitter=self.backoff_s
            ),
            retry=retry_if_exception(is_transient),
            sleep=self.sleep,
            reraise=True,
        )

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn``, retrying transient failures."""
        return self.retrying()(fn)


class _End:
    pass


@dataclass(frozen=True)
class _Failure:
    exc: BaseException


_END = _End()


class DeadlineStream:
    """Iterates ``start()`` in a daemon thread; ``next`` waits at most until the deadline.

    A hung backend cannot be interrupted: its thread is left behind (daemon, stopped at its
    next piece) and the caller gets ModelTimeoutError at the deadline.
    """

    def __init__(
        self,
        start: Callable[[], Iterable[str]],
        deadline_s: float,
        *,
        on_end: Callable[[], None] | None = None,
    ) -> None:
        self.deadline_s = deadline_s
        self.started = time.monotonic()
        self.finished: float | None = None
        self._deadline = self.started + deadline_s
        self._items: queue.SimpleQueue[str | _End | _Failure] = queue.SimpleQueue()
        self._cancelled = threading.Event()
        self._on_end = on_end
        threading.Thread(
            target=self._produce, args=(start,), name="xnai-model-call", daemon=True
        ).start()

    def _produce(self, start: Callable[[], Iterable[str]]) -> None:
        try:
            iterator = iter(start())
            try:
                for piece in iterator:
                    if self._cancelled.is_set():
                        return
                    self._items.put(piece)
            finally:
                close = getattr(iterator, "close", None)
                if callable(close):
                    close()
        except BaseException as exc:  # handed to the caller's thread
            self._items.put(_Failure(exc))
            return
        self.finished = time.monotonic()
        self._items.put(_END)
        if self._on_end is not None and not self._cancelled.is_set():
            self._on_end()

    def next(self) -> str | None:
        """The next piece, None at the end; the call's error, or ModelTimeoutError."""
        remaining = self._deadline - time.monotonic()
        try:
            item = self._items.get(timeout=max(remaining, 0.0))
        except queue.Empty:
            self.cancel()
            raise ModelTimeoutError(
                f"the language model did not finish within {self.deadline_s:g} s"
            ) from None
        if isinstance(item, _Failure):
            raise item.exc
        return None if isinstance(item, _End) else item

    def cancel(self) -> None:
        """Stop reading: the thread stops at its next piece."""
        self._cancelled.set()


@dataclass
class _Attempt:
    call: DeadlineStream
    ticket: Ticket
    first: str | None


class GuardedChatModel:
    """A ChatModel whose every call waits for a generation slot, runs with a hard deadline
    off the caller's thread, is retried on transient failures and goes through the
    circuit breaker.

    Each call to the backend counts for the breaker. Before the first piece a failure may
    be retried; after it nothing is retried (pieces were delivered), but the failure still
    counts against the backend: a model that dies or stalls mid-answer is failing.
    """

    def __init__(
        self,
        model: ChatModel,
        *,
        breaker: CircuitBreaker,
        limiter: GenerationLimiter | None = None,
        deadline_s: float = 120.0,
        retry: RetryPolicy | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.model = model
        self.breaker = breaker
        self.limiter = limiter or GenerationLimiter(metrics=metrics, precheck=breaker.check)
        self.deadline_s = deadline_s
        self.retry = retry or RetryPolicy()
        self.metrics = metrics

    # The wrapped model's name and context window.
    name = Through[str]("model")
    context_size = Through[int]("model")

    def count_tokens(self, text: str) -> int:
        """Tokens as the wrapped model counts them."""
        return self.model.count_tokens(text)

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: Sequence[str] = (),
    ) -> Iterator[str]:
        """Yield the reply; CircuitOpenError, QueueFullError, ModelTimeoutError or the
        backend's ModelError on failure."""

        def start() -> Iterator[str]:
            return self.model.stream(
                messages, max_tokens=max_tokens, temperature=temperature, stop=stop
            )

        with self.limiter.generation() as slot:
            attempt = self._first_piece(start, slot)
            yield from self._rest(attempt)

    def _first_piece(self, start: Callable[[], Iterator[str]], slot: Slot) -> _Attempt:
        """Call the backend until one call delivers its first piece (or ends)."""
        for attempt in self.retry.retrying():
            with attempt:
                return self._attempt(start, slot)
        raise AssertionError("tenacity returns or raises")  # pragma: no cover

    def _attempt(self, start: Callable[[], Iterator[str]], slot: Slot) -> _Attempt:
        slot.ensure()
        ticket = self._ticket(slot)
        call = DeadlineStream(start, self.deadline_s, on_end=slot.release)
        try:
            return _Attempt(call, ticket, call.next())
        except BaseException as exc:
            call.cancel()
            self._outcome(ticket, exc)
            raise

    def _ticket(self, slot: Slot) -> Ticket:
        """The half-open trial reserved when this request was admitted (first attempt
        only), else a ticket taken now."""
        claim = slot.take_claim()
        if isinstance(claim, Trial) and claim.breaker is self.breaker:
            return claim.ticket
        return self.breaker.acquire()

    def _rest(self, attempt: _Attempt) -> Iterator[str]:
        piece = attempt.first
        try:
            while piece is not None:
                yield piece
                piece = attempt.call.next()
        except GeneratorExit:  # the reader stopped early: the backend was answering
            attempt.call.cancel()
            self.breaker.success(attempt.ticket)
            raise
        except BaseException as exc:
            attempt.call.cancel()
            self._outcome(attempt.ticket, exc)
            raise
        self.breaker.success(attempt.ticket)
        if self.metrics is not None and attempt.call.finished is not None:
            elapsed = attempt.call.finished - attempt.call.started
            self.metrics.observe(
                "xoe_model_inference_time_seconds", elapsed, backend=self.breaker.name
            )

    def _outcome(self, ticket: Ticket, exc: BaseException) -> None:
        if not isinstance(exc, Exception):  # interrupted, not an answer of the backend
            self.breaker.release(ticket)
            return
        self.breaker.record(ticket, exc)
        if self.metrics is not None:
            self.metrics.inc("xoe_error_count_total", component="llm", type=error_kind(exc))


class LateMetrics:
    """Forwards to the ``Metrics`` that ``target()`` returns at each call, so components
    built before their container report to its metrics even when they are replaced."""

    def __init__(self, target: Callable[[], Metrics]) -> None:
        self._target = target

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        """Add to a counter."""
        self._target().inc(name, amount, **labels)

    def set(self, name: str, value: float, **labels: str) -> None:
        """Set a gauge."""
        self._target().set(name, value, **labels)

    def observe(self, name: str, value: float, **labels: str) -> None:
        """Record one value of a histogram."""
        self._target().observe(name, value, **labels)
