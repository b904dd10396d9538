"""One chat conversation: questions answered as its principal, history within the model's
context budget, retrieval on or off, and the numbers ``/stats`` shows.

Everything here is synchronous and blocking (retrieval, the model); the chat's handlers run
it off the event loop. Each question is asked as the principal of the chat's session token,
checked again for every question, within that principal's access scope, so collection rules
apply to every answer.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial

from xnai.bootstrap import Container
from xnai.domain.errors import (
    AuthenticationError,
    CircuitOpenError,
    MfaEnrolmentRequiredError,
    ModelError,
    PermissionDeniedError,
    QueueFullError,
    XnaiError,
)
from xnai.domain.limits import MAX_MESSAGES
from xnai.domain.models import Answer, ChatMessage, Citation, IngestReport
from xnai.domain.rbac import Permission, Principal
from xnai.services.answer import PLAIN_PROMPT, SYSTEM_PROMPT, Done, Token
from xnai.services.ask import Asker, Question

# Room kept free for the chat template's own tokens around the messages.
TEMPLATE_TOKENS = 64
CHAT_COMPONENT = "ui"


def estimate_tokens(text: str) -> int:
    """A cautious token count without a tokenizer: a token per three characters."""
    return len(text) // 3 + 1


@dataclass
class Stats:
    """What one conversation asked and how long the answers took."""

    started: float = field(default_factory=time.monotonic)
    questions: int = 0
    from_library: int = 0
    plain: int = 0
    cached: int = 0
    failed: int = 0
    pieces: int = 0
    retrieval_ms: list[float] = field(default_factory=list)
    first_token_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    files_added: int = 0
    files_failed: int = 0

    def markdown(self, *, rag: bool, history_turns: int, history_tokens: int) -> str:
        """The numbers as a Markdown table."""
        rows = [
            ("questions", str(self.questions)),
            ("answered from the library", str(self.from_library)),
            ("answered without retrieval", str(self.plain)),
            ("served from the answer cache", str(self.cached)),
            ("failed or refused", str(self.failed)),
            ("answer pieces streamed", str(self.pieces)),
            ("retrieval, median", _ms(self.retrieval_ms)),
            ("first token, median", _ms(self.first_token_ms)),
            ("whole answer, median", _ms(self.total_ms)),
            ("files added / failed", f"{self.files_added} / {self.files_failed}"),
            ("retrieval", "on" if rag else "off"),
            ("history kept", f"{history_turns} turns, about {history_tokens} tokens"),
            ("conversation age", f"{time.monotonic() - self.started:.0f} s"),
        ]
        body = "\n".join(f"| {name} | {value} |" for name, value in rows)
        return "**This conversation**\n\n| | |\n|---|---|\n" + body


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} ms" if values else "–"


class Reply(Iterator[str]):
    """The pieces of one answer as they are generated; ``answer`` is set at the end.

    Iterating blocks (the model generates); ``close`` stops generation early and frees the
    answer's place in the generation queue.
    """

    def __init__(
        self,
        events: Iterator[Token | Done],
        *,
        citations: tuple[Citation, ...],
        started: float,
        on_done: Callable[[Reply], None],
    ) -> None:
        self._events = events
        self.citations = citations  # the sources the answer may cite
        self.started = started
        self.answer: Answer | None = None
        self.first_token_ms: float | None = None
        self.pieces = 0
        self._on_done = on_done

    def __next__(self) -> str:
        while True:
            event = next(self._events)
            if isinstance(event, Token):
                if self.first_token_ms is None:
                    self.first_token_ms = (time.perf_counter() - self.started) * 1000
                self.pieces += 1
                return event.text
            if isinstance(event, Done):
                self.answer = event.answer
                self._on_done(self)

    def close(self) -> None:
        """Stop generating (the queue place is released)."""
        close = getattr(self._events, "close", None)
        if callable(close):
            close()

    @property
    def cited(self) -> tuple[Citation, ...]:
        """The sources the finished answer rests on."""
        return self.answer.citations if self.answer is not None else ()


class Conversation:
    """The state of one chat: history, retrieval switch, upload collection and stats."""

    def __init__(self, container: Container, principal: Callable[[], Principal]) -> None:
        self.c = container
        self._principal = principal
        self.rag = True
        self.voice = False
        self.collection = "default"
        self.history: list[ChatMessage] = []
        self.stats = Stats()

    def principal(self) -> Principal:
        """Who asks, checked now."""
        return self._principal()

    # -- answering ---------------------------------------------------------------------------

    def ask(self, question: str, *, retrieval: bool | None = None) -> Reply:
        """Start answering ``question`` (from the library unless retrieval is off, or
        ``retrieval`` says otherwise); CircuitOpenError or QueueFullError when the model
        cannot take it now."""
        principal = self.principal()
        use_library = self.rag if retrieval is None else retrieval
        self.stats.questions += 1
        started = time.perf_counter()
        try:
            if use_library:
                return self._from_library(question, principal, started)
            return self._plain(question, principal, started)
        except XnaiError:
            self.stats.failed += 1
            raise

    def _from_library(self, question: str, principal: Principal, started: float) -> Reply:
        history = self._history_within(self.history_budget(question, retrieval=True))
        asked = self.c.ask.ask(
            Question(question, history=tuple(history)), Asker(principal, CHAT_COMPONENT)
        )
        return Reply(
            asked.events(),
            citations=asked.citations,
            started=started,
            on_done=partial(self._finished, question, "answer"),
        )

    def _plain(self, question: str, principal: Principal, started: float) -> Reply:
        history = self._history_within(self.history_budget(question, retrieval=False))
        asked = self.c.ask.converse(
            Question(question, history=tuple(history)), Asker(principal, CHAT_COMPONENT, "chat")
        )
        return Reply(
            asked.events(),
            citations=(),
            started=started,
            on_done=partial(self._finished, question, "chat"),
        )

    def bundle_json(self, answer: Answer | None) -> str | None:
        """The signed bundle of ``answer``, as the file the chat offers for download; None
        when the answer has none (its bundle could not be kept)."""
        if answer is None or not answer.answer_id:
            return None
        user_id = self.principal().user_id
        return self.c.answer_bundles.bundle_for(answer.answer_id, user_id).to_json()

    def _finished(self, question: str, intent: str, reply: Reply) -> None:
        answer = reply.answer
        assert answer is not None
        s = self.stats
        total_ms = (time.perf_counter() - reply.started) * 1000
        if answer.usage.get("cache_hit"):
            s.cached += 1
        if intent == "answer":
            s.from_library += 1
            if not answer.usage.get("cache_hit"):
                s.retrieval_ms.append(answer.retrieval_ms)
        else:
            s.plain += 1
        s.pieces += reply.pieces
        if reply.first_token_ms is not None:
            s.first_token_ms.append(reply.first_token_ms)
        s.total_ms.append(total_ms)
        self.history += [
            ChatMessage("user", question.strip()),
            ChatMessage("assistant", answer.text),
        ]

    # -- history -----------------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text``: the model's own count once it is loaded, else an estimate."""
        if self.c.model.loaded:
            return self.c.model.count_tokens(text)
        return estimate_tokens(text)

    def history_budget(self, question: str, *, retrieval: bool) -> int:
        """Tokens the history may take next to the prompt, the sources and the reply."""
        model, policy = self.c.answers.model, self.c.answers.policy
        prompt = SYSTEM_PROMPT if retrieval else PLAIN_PROMPT
        room = model.context_size - policy.max_tokens - TEMPLATE_TOKENS
        room -= self.count_tokens(prompt + question)
        if retrieval:
            # Sources may take their whole budget; with no budget they may take everything.
            room -= policy.source_tokens if policy.source_tokens else room
        return max(0, room)

    def _history_within(self, budget: int) -> list[ChatMessage]:
        """The newest whole turns that fit ``budget`` and the message cap; older turns are
        forgotten."""
        turns = [self.history[i : i + 2] for i in range(0, len(self.history), 2)]
        kept: list[list[ChatMessage]] = []
        used = 0
        for turn in reversed(turns):
            cost = sum(self.count_tokens(m.content) + 4 for m in turn)
            if used + cost > budget or 2 * (len(kept) + 1) >= MAX_MESSAGES:
                break
            kept.insert(0, turn)
            used += cost
        self.history = [m for turn in kept for m in turn]
        return list(self.history)

    def history_tokens(self) -> int:
        """Tokens the kept history takes."""
        return sum(self.count_tokens(m.content) + 4 for m in self.history)

    def reset(self) -> None:
        """Forget the conversation (the stats stay)."""
        self.history = []

    # -- uploads -----------------------------------------------------------------------------

    def upload(
        self, files: list[tuple[str, bytes]], *, source_ip: str | None = None
    ) -> IngestReport:
        """Ingest files into the chat's collection, with the HTTP upload's checks:
        PermissionDeniedError (or NotFoundError for an unknown collection) when refused."""
        principal = self.principal()
        if not principal.can(Permission.WRITE_DOCUMENTS):
            raise PermissionDeniedError(
                f"the role {principal.role.value} may not add documents: ask an editor or admin"
            )
        self.c.access.check_write(principal, self.collection)
        report = self.c.ingestion.ingest_uploads(
            files,
            user=principal.user_id,
            collection=self.collection,
            principal=principal,
            source_ip=source_ip,
        )
        self.stats.files_added += len(report.added) + len(report.replaced)
        self.stats.files_failed += len(report.failed)
        if report.failed:
            self.c.metrics.inc(
                "xoe_security_violation_total", len(report.failed), kind="invalid_upload"
            )
        return report

    def upload_refused(self) -> None:
        """Count an upload refused for lack of permission."""
        self.c.metrics.inc("xoe_security_violation_total", kind="forbidden")


def friendly_error(exc: BaseException) -> str:
    """What the chat says when a question cannot be answered."""
    if isinstance(exc, CircuitOpenError):
        return (
            "The language model is not answering right now, so I paused asking it. "
            f"Please try again in about {exc.retry_after} seconds."
        )
    if isinstance(exc, QueueFullError):
        return (
            "Too many questions are waiting for the language model. "
            f"Please try again in about {exc.retry_after} seconds."
        )
    if isinstance(exc, AuthenticationError):
        return (
            "Your session has ended (you signed out elsewhere, it expired, or your account "
            "changed): sign out and sign in again."
        )
    if isinstance(exc, MfaEnrolmentRequiredError):
        return str(exc)
    if isinstance(exc, ModelError):
        return "The language model failed to answer this time. Please try again."
    if isinstance(exc, XnaiError):
        return str(exc) or type(exc).__name__
    return "Something went wrong while answering. Please try again."
