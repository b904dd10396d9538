"""The answer cache: a complete generated answer, reused for the same question asked again
within the same access scope of the same index state.

The key is a SHA-256 (an HMAC-SHA-256 under a key of the key ring, when there is one) over
the normalised question, the index version (generation and a fingerprint of its documents),
the retrieval and generation settings, the model and the caller's access scope key. Two
callers share an entry only when they may read exactly the same collections, so one user's
cached answer never reaches a user who may read less (or other) collections. Entries are
sealed with the key ring's ``user_data`` key like every other copy of document text.
A hit needs neither retrieval nor the model, and is still a ``query`` audit event naming
the chunks behind the answer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, TypedDict, TypeVar, Unpack

from xnai.domain.access import AccessScope
from xnai.domain.cache import Cache
from xnai.domain.errors import IntegrityError
from xnai.domain.keys import USER_DATA
from xnai.domain.metrics import Metrics
from xnai.domain.models import Answer, ChatMessage, Citation, SearchMode
from xnai.domain.ports import AuditSink, ChatModel, KeyRing
from xnai.services.answer import AnswerPolicy, AnswerService, Done, Prepared, Token
from xnai.services.delegation import Through
from xnai.services.knowledge import Snapshot
from xnai.services.retrieval import Retriever

log = logging.getLogger("xnai.cache")

T = TypeVar("T")

ANSWER_PREFIX = "answer:"
ENTRY_VERSION = 1


def normalise(query: str) -> str:
    """The question as the cache compares it: case-folded, whitespace collapsed."""
    return " ".join(query.casefold().split())


class AskOptions(TypedDict, total=False):
    """How a question is asked besides its text and scope: the options of
    ``AnswerService.prepare``."""

    mode: SearchMode | None
    top_k: int | None
    max_tokens: int | None
    history: Sequence[ChatMessage]


@dataclass(frozen=True, slots=True)
class CachedPrepared(Prepared):
    """A prepared question with its cache key; ``hit`` holds the cached answer, if any."""

    cache_key: str = ""
    scope_key: str = ""
    hit: Answer | None = None


class IndexVersion:
    """The committed index state as a short string: the generation number and a fingerprint
    of its documents (id, content hash, collection), computed once per generation. The
    fingerprint keeps installations that share one Redis apart even at equal generations."""

    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot
        self._memo: tuple[int, str] | None = None

    def __call__(self) -> str:
        snap = self._snapshot()
        memo = self._memo
        if memo is None or memo[0] != snap.generation:
            digest = hashlib.sha256()
            for doc in sorted(snap.documents.values(), key=lambda d: d.doc_id):
                digest.update(f"{doc.doc_id}\x00{doc.sha256}\x00{doc.collection}\n".encode())
            memo = (snap.generation, f"{snap.generation}:{digest.hexdigest()[:24]}")
            self._memo = memo
        return memo[1]


class CachedAnswerService(AnswerService):
    """An ``AnswerService`` that answers repeated questions from a ``Cache``.

    It wraps another answer service (``inner``) and hands it every miss, so whatever guards
    the inner service's model (timeouts, breaker, queue) stays in force for generation. Only
    complete, grounded, non-empty generated answers are stored; errors and interrupted
    streams never are. Lookups count in ``xoe_cache_requests_total{result=hit|miss|error}``.
    """

    def __init__(
        self,
        inner: AnswerService,
        cache: Cache,
        *,
        index_version: Callable[[], str],
        model_id: str,
        ttl: int,
        metrics: Callable[[], Metrics] | None = None,
        keyring: KeyRing | None = None,
    ) -> None:
        # No super().__init__: retriever, model, policy and audit are the inner service's.
        self.inner = inner
        self.keyring = keyring
        self.cache = cache
        self.index_version = index_version
        self.model_id = model_id
        self.ttl = ttl
        self._metrics = metrics

    # The parts of the inner service, read and written through, so code that swaps one
    # (a test's audit sink, say) changes the service that does the work.
    retriever = Through[Retriever]("inner")
    model = Through[ChatModel]("inner")
    policy = Through[AnswerPolicy]("inner")
    audit = Through[AuditSink | None]("inner")

    # -- answering --------------------------------------------------------------------------

    def key_for(self, query: str, *, scope: AccessScope, **asked: Unpack[AskOptions]) -> str:
        """The cache key of a question asked with these settings within ``scope``."""
        p = self.inner.policy
        parts = [
            ENTRY_VERSION,
            normalise(query),
            self.index_version(),
            (asked.get("mode") or p.mode).value,
            asked.get("top_k") or p.top_k,
            asked.get("max_tokens") or p.max_tokens,
            self.model_id,
            [p.temperature, p.min_score, p.context_tokens, p.evidence, p.evidence_tokens],
            scope.key,
            [[m.role, m.content] for m in asked.get("history", ())],
        ]
        blob = json.dumps(parts, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        if self.keyring is None:
            return ANSWER_PREFIX + hashlib.sha256(blob).hexdigest()
        # Keyed: the keys in Redis do not let anyone confirm a guessed question.
        _, secret = self.keyring.mac_key(USER_DATA)
        return ANSWER_PREFIX + hmac.new(secret, blob, hashlib.sha256).hexdigest()

    def prepare(self, query: str, *, scope: AccessScope, **asked: Unpack[AskOptions]) -> Prepared:
        """The cached answer when there is one (recorded as a ``query`` audit event), else
        retrieval and prompt from the inner service."""
        key = self.key_for(query, scope=scope, **asked)
        hit = self._hit(key, query, scope, asked, count_misses=True)
        if hit is not None:
            return hit
        prepared = self.inner.prepare(query, scope=scope, **asked)
        base = {f.name: getattr(prepared, f.name) for f in fields(Prepared)}
        return CachedPrepared(**base, cache_key=key, scope_key=scope.key)

    def lookup(
        self, query: str, *, scope: AccessScope, **asked: Unpack[AskOptions]
    ) -> CachedPrepared | None:
        """The cached answer, ready to stream (recorded as a ``query`` audit event), or None
        without retrieval; a miss is counted by the ``prepare`` that follows it."""
        key = self.key_for(query, scope=scope, **asked)
        return self._hit(key, query, scope, asked, count_misses=False)

    def _hit(
        self, key: str, query: str, scope: AccessScope, asked: AskOptions, *, count_misses: bool
    ) -> CachedPrepared | None:
        found = self._lookup(key, scope, count_misses)
        if found is None:
            return None
        answer, chunk_ids, doc_ids = found
        # The same ``query`` audit event a retrieval records, marked as served from cache.
        mode = asked.get("mode")
        self.inner.record_query(query, scope, mode, chunk_ids, doc_ids, cache="hit")
        return CachedPrepared(
            query,
            (),
            answer.citations,
            0.0,
            answer.grounded,
            asked.get("max_tokens") or self.inner.policy.max_tokens,
            cache_key=key,
            scope_key=scope.key,
            hit=answer,
        )

    def stream(self, prepared: Prepared) -> Iterator[Token | Done]:
        """The cached answer as one token and Done, else the inner service's stream; a
        complete answer is stored when the stream reaches Done."""
        if isinstance(prepared, CachedPrepared) and prepared.hit is not None:
            yield Token(prepared.hit.text)
            yield Done(prepared.hit)
            return
        for event in self.inner.stream(prepared):
            if isinstance(event, Done) and isinstance(prepared, CachedPrepared):
                self._store(prepared, event.answer)
            yield event

    def sources(
        self,
        query: str,
        *,
        scope: AccessScope,
        mode: SearchMode | None = None,
        top_k: int | None = None,
    ) -> tuple[tuple[Citation, ...], float]:
        """Retrieval only (never cached: it is cheap and needs no model)."""
        return self.inner.sources(query, scope=scope, mode=mode, top_k=top_k)

    def forget(self) -> int:
        """Drop every cached answer; how many were removed."""
        return self.cache.delete_prefix(ANSWER_PREFIX)

    # -- internals --------------------------------------------------------------------------

    def _lookup(
        self, key: str, scope: AccessScope, count_misses: bool
    ) -> tuple[Answer, list[str], list[str]] | None:
        entry = self.cache.get(key)
        if entry is None:
            if count_misses:
                self._count("miss" if self.cache.healthy else "error")
            return None
        try:
            if entry["v"] != ENTRY_VERSION or entry["scope"] != scope.key:
                raise ValueError("entry of another version or scope")
            sealed = self._open(entry["sealed"])
            found = (
                answer_from(sealed["answer"]),
                [str(i) for i in sealed["chunk_ids"]],
                [str(i) for i in sealed["doc_ids"]],
            )
        except (KeyError, TypeError, ValueError, IntegrityError) as exc:
            log.warning("ignoring unreadable answer cache entry: %s", exc)
            if count_misses:
                self._count("miss")
            return None
        self._count("hit")
        return found

    def _store(self, prepared: CachedPrepared, answer: Answer) -> None:
        if not (answer.grounded and prepared.grounded and answer.text.strip()):
            return  # only answers the model generated from sources
        if self.ttl <= 0:
            return
        sealed = {
            "answer": answer_to_dict(answer),
            "chunk_ids": [c.chunk_id for c in prepared.citations],
            "doc_ids": list(dict.fromkeys(c.doc_id for c in prepared.citations)),
        }
        entry = {
            "v": ENTRY_VERSION,
            "scope": prepared.scope_key,
            "stored_at": round(time.time(), 3),
            "sealed": self._seal(sealed),
        }
        self.cache.set(prepared.cache_key, entry, self.ttl)

    def _seal(self, data: dict[str, Any]) -> str:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        if self.keyring is None:
            return text
        return self.keyring.encrypt(USER_DATA, text.encode("utf-8")).decode("utf-8")

    def _open(self, sealed: str) -> dict[str, Any]:
        raw = sealed.encode("utf-8")
        if self.keyring is not None:
            raw = self.keyring.decrypt(USER_DATA, raw)
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("sealed entry is not an object")
        return data

    def _count(self, result: str) -> None:
        if self._metrics is not None:
            self._metrics().inc("xoe_cache_requests_total", result=result)


def answer_to_dict(answer: Answer) -> dict[str, Any]:
    """An answer as JSON-ready data (citations with their text and spans)."""
    return {
        "text": answer.text,
        "citations": [asdict(c) for c in answer.citations],
        "model": answer.model,
        "grounded": answer.grounded,
        "usage": dict(answer.usage),
    }


def answer_from(data: dict[str, Any]) -> Answer:
    """The answer ``answer_to_dict`` wrote, served from cache (no retrieval, no generation)."""
    usage = {str(k): int(v) for k, v in dict(data.get("usage", {})).items()}
    usage["cache_hit"] = 1
    return Answer(
        text=str(data["text"]),
        citations=tuple(Citation(**c) for c in data["citations"]),
        model=str(data["model"]),
        retrieval_ms=0.0,
        generation_ms=0.0,
        grounded=bool(data["grounded"]),
        usage=usage,
    )


def cached_answer(
    answers: AnswerService, query: str, *, scope: AccessScope, **asked: Unpack[AskOptions]
) -> Prepared | None:
    """The cached answer of a question, ready for ``answers.stream``/``complete``, or None
    (a miss, or no cache). A hit needs neither retrieval nor the model, so callers serve it
    without taking a place in the generation queue, even while the model's breaker is open."""
    if not isinstance(answers, CachedAnswerService):
        return None
    return answers.lookup(query, scope=scope, **asked)


class NoAdmission:
    """What a request that needs no model holds instead of a generation queue admission:
    ``hold``, ``run`` and ``bind`` just call through."""

    def hold(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)``."""
        return fn(*args)

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)``."""
        return fn(*args)

    def bind(self, iterator: Iterator[T]) -> Iterator[T]:
        """``iterator`` itself."""
        return iterator

    def release(self) -> None:
        """Nothing to release."""
