"""Asking a question, the one way every entry point does it: permission, access scope,
answer cache, generation queue, streaming, audit and query metrics.

A cached answer is served before the generation queue is asked for a place, so it needs
neither the model nor a place in the queue, even while the model's breaker is open. Every
other question takes its place at once (CircuitOpenError while the breaker is open,
QueueFullError when every place is taken) and keeps it until its answer has been generated.
Retrieval records the ``query`` audit event (who saw which chunks); the finished answer is
reported to the query metrics here, once, and (with answer bundles) gets its signed bundle
and the bundle's id, whichever entry point asked.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from xnai.domain.access import AccessScope
from xnai.domain.errors import InvalidInputError, PermissionDeniedError
from xnai.domain.limits import MAX_CONVERSATION_CHARS, MAX_MESSAGES, MAX_QUESTION_CHARS
from xnai.domain.metrics import Metrics
from xnai.domain.models import Answer, ChatMessage, Citation, SearchMode
from xnai.domain.rbac import Permission, Principal
from xnai.services.access import AccessService
from xnai.services.answer import AnswerService, Done, Prepared, Token
from xnai.services.answer_bundles import AnswerBundles
from xnai.services.answer_cache import NoAdmission, cached_answer
from xnai.services.generation import Admission, GenerationLimiter
from xnai.services.query_metrics import NO_RETRIEVAL, QueryMetrics


@dataclass(frozen=True, slots=True)
class Question:
    """A question and how to answer it; None leaves a setting to the answer policy."""

    text: str
    mode: SearchMode | None = None
    top_k: int | None = None
    max_tokens: int | None = None
    history: tuple[ChatMessage, ...] = ()  # earlier turns of the conversation


@dataclass(frozen=True, slots=True)
class Asker:
    """Who asks and through which entry point (``component``: api, ui, cli); ``intent``
    labels the query in the metrics (answer, chat, retrieval)."""

    principal: Principal
    component: str
    intent: str = "answer"


class Asked:
    """A question ready to be answered: its sources (or its cached answer) and its place in
    the generation queue, held until the answer ends."""

    def __init__(
        self,
        answers: AnswerService,
        prepared: Prepared,
        admission: Admission | NoAdmission,
        report: Callable[[Answer], None],
        finish: Callable[[Answer], Answer] | None = None,
    ) -> None:
        self._answers = answers
        self.prepared = prepared
        self._admission = admission
        self._report = report
        self._finish = finish or _unchanged

    @property
    def citations(self) -> tuple[Citation, ...]:
        """The sources the answer may cite."""
        return self.prepared.citations

    def events(self) -> Iterator[Token | Done]:
        """The answer piece by piece, then Done; the queue place is released when the
        iterator ends, is closed or is dropped."""
        return self._admission.bind(self._reported())

    def complete(self) -> Answer:
        """The whole answer at once."""
        answer = self._finish(self._admission.run(self._answers.complete, self.prepared))
        self._report(answer)
        return answer

    def _reported(self) -> Iterator[Token | Done]:
        for event in self._answers.stream(self.prepared):
            if isinstance(event, Done):
                event = Done(self._finish(event.answer))
                self._report(event.answer)
            yield event


def _unchanged(answer: Answer) -> Answer:
    return answer


def check_size(question: Question) -> None:
    """InvalidInputError when the question or its conversation is longer than the caps."""
    if len(question.text) > MAX_QUESTION_CHARS:
        raise InvalidInputError(
            f"the question has {len(question.text)} characters; at most "
            f"{MAX_QUESTION_CHARS} are accepted: shorten it"
        )
    if len(question.history) + 1 > MAX_MESSAGES:
        raise InvalidInputError(
            f"the conversation has {len(question.history) + 1} messages; at most "
            f"{MAX_MESSAGES} are accepted: start a new one"
        )
    total = len(question.text) + sum(len(m.content) for m in question.history)
    if total > MAX_CONVERSATION_CHARS:
        raise InvalidInputError(
            f"the conversation has {total} characters; at most {MAX_CONVERSATION_CHARS} "
            "are accepted: start a new one"
        )


class AskService:
    """Answers questions for every entry point alike."""

    def __init__(
        self,
        answers: AnswerService,
        access: AccessService,
        generation: GenerationLimiter,
        metrics: Metrics,
        bundles: AnswerBundles | None = None,
    ) -> None:
        self.answers = answers
        self.access = access
        self.generation = generation
        self.bundles = bundles  # None: answers get no signed bundle
        policy = answers.policy
        self.metrics = QueryMetrics(
            metrics, default_mode=policy.mode.value, min_score=policy.min_score
        )

    @property
    def model_name(self) -> str:
        """The name of the model that answers."""
        return self.answers.model.name

    def ask(self, question: Question, asker: Asker) -> Asked:
        """Retrieve within what the asker may read and prepare the answer (or find it in the
        answer cache); CircuitOpenError or QueueFullError at once when the model cannot
        take it now."""
        check_size(question)
        started = time.perf_counter()
        scope = self._scope(asker.principal)
        options: dict[str, Any] = {
            "scope": scope,
            "mode": question.mode,
            "top_k": question.top_k,
            "max_tokens": question.max_tokens,
            "history": question.history,
        }
        prepared = cached_answer(self.answers, question.text, **options)
        admission = self.generation.admit() if prepared is None else NoAdmission()
        if prepared is None:
            prepare = partial(self.answers.prepare, question.text, **options)
            prepared = admission.hold(prepare)
        report = self._reporter(started, asker, _label(question.mode))
        return Asked(self.answers, prepared, admission, report, self._finisher(question, asker))

    def converse(self, question: Question, asker: Asker) -> Asked:
        """The model alone answers from the conversation (no retrieval, no cache)."""
        check_size(question)
        self._check(asker.principal)
        started = time.perf_counter()
        admission = self.generation.admit()
        prepared = self.answers.converse(
            question.text, history=question.history, max_tokens=question.max_tokens
        )
        report = self._reporter(started, asker, NO_RETRIEVAL)
        finish = self._finisher(question, asker, retrieval=False)
        return Asked(self.answers, prepared, admission, report, finish)

    def sources(self, question: Question, asker: Asker) -> Answer:
        """Retrieval only, no model: an answer with sources and no text."""
        check_size(question)
        started = time.perf_counter()
        scope = self._scope(asker.principal)
        citations, retrieval_ms = self.answers.sources(
            question.text, scope=scope, mode=question.mode, top_k=question.top_k
        )
        answer = Answer("", citations, self.model_name, retrieval_ms, 0.0, bool(citations))
        self._reporter(started, asker, _label(question.mode), generate=False)(answer)
        return answer

    def _scope(self, principal: Principal) -> AccessScope:
        self._check(principal)
        return self.access.scope_for(principal)

    @staticmethod
    def _check(principal: Principal) -> None:
        if not principal.can(Permission.EXECUTE_QUERIES):
            raise PermissionDeniedError(f"the role {principal.role.value} may not ask questions")

    def _finisher(
        self, question: Question, asker: Asker, *, retrieval: bool = True
    ) -> Callable[[Answer], Answer] | None:
        """What gives a finished answer its signed bundle (None without answer bundles)."""
        if self.bundles is None:
            return None
        policy = self.answers.policy
        settings = {
            "mode": (question.mode or policy.mode).value,
            "top_k": question.top_k or policy.top_k,
        }
        return partial(
            self.bundles.keep,
            question=question.text,
            user_id=asker.principal.user_id,
            retrieval=settings if retrieval else None,
        )

    def _reporter(
        self, started: float, asker: Asker, mode: str | None, *, generate: bool = True
    ) -> Callable[[Answer], None]:
        """What reports the answer of this question to the query metrics."""
        return partial(
            self.metrics.answered,
            started=started,
            intent=asker.intent,
            component=asker.component,
            mode=mode,
            generate=generate,
        )


def _label(mode: SearchMode | None) -> str | None:
    return mode.value if mode else None


def sources_json(asked: Asked, seconds: float) -> dict[str, Any]:
    """The JSON form of the sources a question's answer may cite, known ``seconds`` after
    it was asked (before generation starts)."""
    return {
        "sources": [c.as_dict() for c in asked.citations],
        "metadata": {
            "processing_time": round(seconds, 4),
            "retrieval_ms": round(asked.prepared.retrieval_ms, 2),
            "grounded": asked.prepared.grounded,
        },
    }


def answer_json(answer: Answer, seconds: float) -> dict[str, Any]:
    """The JSON form of an answer that took ``seconds`` to produce."""
    return {
        "answer_id": answer.answer_id or None,
        "response": answer.text,
        "sources": [c.as_dict() for c in answer.citations],
        "metadata": {
            "processing_time": round(seconds, 4),
            "retrieval_ms": round(answer.retrieval_ms, 2),
            "generation_ms": round(answer.generation_ms, 2),
            "model": answer.model,
            "grounded": answer.grounded,
        },
    }
