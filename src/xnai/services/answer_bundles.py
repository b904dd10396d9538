"""Verifiable answers: each answer becomes a signed bundle, kept for its asker; a bundle is
verified against its signature and against the library as it is now.

Verification first checks the signature over the bundle's signed bytes: a bundle altered
after signing (its answer, a span, a hash) or signed by a key this installation does not
hold is forged, and nothing else in it is trusted. Then each cited span is read from the
library: a document that is gone is erased; a span whose characters no longer have the
recorded sha256 is changed. A document re-ingested with other content whose cited spans
still read the same is not a failure: the evidence is intact, and a note says so.
"""

from __future__ import annotations

import base64
import binascii
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from xnai.domain.bundles import (
    AnswerBundle,
    AnswerBundleStore,
    CitedSpan,
    Setting,
    Signature,
    sha256_text,
)
from xnai.domain.errors import NotFoundError
from xnai.domain.models import Answer, Chunk, Citation, Document
from xnai.domain.ports import SignatureVerifier, Signer
from xnai.services.answer import PROMPT_TEMPLATE_VERSION
from xnai.services.knowledge import Snapshot

log = logging.getLogger("xnai.answers")


class Status(StrEnum):
    """The outcome of verifying a bundle, worst last."""

    OK = "ok"
    CHANGED = "changed"
    ERASED = "erased"
    FORGED = "forged"


@dataclass(frozen=True, slots=True)
class Provenance:
    """How answers are made, beyond each answer: the model file's sha256 (computed when
    first needed) and the retrieval settings every question shares."""

    model_sha256: Callable[[], str | None] = lambda: None
    retrieval: Mapping[str, Setting] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DocumentProblem:
    """A cited document that is gone (erased) or whose cited text changed."""

    status: Status
    doc_id: str
    source: str
    numbers: tuple[int, ...]  # the citation numbers that name it
    spans: tuple[tuple[int, int], ...]

    @property
    def message(self) -> str:
        """One line naming the document and what happened to it."""
        cited = ", ".join(f"[{n}]" for n in self.numbers)
        if self.status is Status.ERASED:
            return (
                f"document {self.doc_id} ({self.source}), cited as {cited}, is no longer in "
                "the library: it was removed or erased"
            )
        where = ", ".join(f"{a}-{b}" for a, b in self.spans)
        return (
            f"document {self.doc_id} ({self.source}) changed: the text cited as {cited} "
            f"(characters {where}) no longer reads the same"
        )


@dataclass(frozen=True, slots=True)
class Verification:
    """What verifying one bundle found."""

    status: Status
    key_id: str
    spans: int = 0
    reason: str = ""  # why the signature failed
    problems: tuple[DocumentProblem, ...] = ()
    notes: tuple[str, ...] = ()  # re-ingested documents whose cited spans read the same

    @property
    def ok(self) -> bool:
        """True when the signature holds and every cited span reads the same."""
        return self.status is Status.OK


def question_sha256(question: str) -> str:
    """The sha256 a bundle names its question by: of its UTF-8 text as asked."""
    return sha256_text(question)


def cited_spans(
    citations: Iterable[Citation], documents: Mapping[str, Document]
) -> list[CitedSpan]:
    """The cited spans of an answer, with the sha256 of each document as it is now ("" for
    one that left the library since it was retrieved)."""
    spans = []
    for c in citations:
        doc = documents.get(c.doc_id)
        spans.append(
            CitedSpan(
                number=c.number,
                doc_id=c.doc_id,
                chunk_id=c.chunk_id,
                source=c.source,
                title=c.title,
                document_sha256=doc.sha256 if doc is not None else "",
                start=c.start,
                end=c.end,
                text_sha256=sha256_text(c.text),
            )
        )
    return spans


def signature_problem(bundle: AnswerBundle, verifier: SignatureVerifier) -> str:
    """Why the bundle's signature does not hold ("" when it does)."""
    sig = bundle.signature
    if sig is None:
        return "the bundle carries no signature"
    if sig.algorithm != verifier.algorithm:
        return (
            f"it is signed with {sig.algorithm}, this installation signs with {verifier.algorithm}"
        )
    try:
        value = base64.b64decode(sig.value, validate=True)
    except (binascii.Error, ValueError):
        return "its signature is not base64"
    if verifier.verify(bundle.signed_bytes(), value, sig.key_id):
        return ""
    return (
        f"its signature does not match its content under key {sig.key_id}: the bundle was "
        "altered after it was signed, or signed by a key this installation does not hold"
    )


def read_span(chunks: Sequence[Chunk], start: int, end: int) -> str | None:
    """Characters ``start``..``end`` of a document's text, pieced together from its chunks
    (each is its text from ``chunk.start`` to ``chunk.end``); None where none covers them."""
    pieces, cursor = [], start
    for chunk in sorted(chunks, key=lambda c: (c.start, c.end)):
        if cursor >= end:
            break
        if chunk.start <= cursor < chunk.end:
            stop = min(end, chunk.end)
            pieces.append(chunk.text[cursor - chunk.start : stop - chunk.start])
            cursor = stop
    if cursor < end:
        return None if start != end else ""
    return "".join(pieces)


def library_findings(
    spans: Sequence[CitedSpan], snapshot: Snapshot
) -> tuple[list[DocumentProblem], list[str]]:
    """The cited documents that are gone or changed, and notes on re-ingested documents
    whose cited spans still read the same."""
    by_doc: dict[str, list[CitedSpan]] = {}
    for span in spans:
        by_doc.setdefault(span.doc_id, []).append(span)
    problems, notes = [], []
    for doc_id, cited in by_doc.items():
        doc = snapshot.documents.get(doc_id)
        if doc is None:
            problems.append(_problem(Status.ERASED, cited))
            continue
        chunks = [snapshot.chunks[c] for c in doc.chunk_ids if c in snapshot.chunks]
        changed = [s for s in cited if _reads_differently(s, chunks)]
        if changed:
            problems.append(_problem(Status.CHANGED, changed))
        elif any(s.document_sha256 != doc.sha256 for s in cited):
            notes.append(
                f"document {doc_id} ({doc.source}) was ingested again with other content; "
                "the text the answer cites reads the same"
            )
    return problems, notes


def _reads_differently(span: CitedSpan, chunks: Sequence[Chunk]) -> bool:
    text = read_span(chunks, span.start, span.end)
    return text is None or sha256_text(text) != span.text_sha256


def _problem(status: Status, spans: Sequence[CitedSpan]) -> DocumentProblem:
    first = spans[0]
    return DocumentProblem(
        status,
        first.doc_id,
        first.source,
        tuple(s.number for s in spans),
        tuple((s.start, s.end) for s in spans),
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _new_id() -> str:
    return uuid.uuid4().hex


class AnswerBundles:
    """Makes, signs and keeps a bundle for each answer; finds and verifies bundles."""

    def __init__(
        self,
        signer: Signer,
        store: AnswerBundleStore,
        library: Callable[[], Snapshot],
        provenance: Provenance | None = None,
        *,
        clock: Callable[[], datetime] = _now,
        new_id: Callable[[], str] = _new_id,
    ) -> None:
        self.signer = signer
        self.store = store
        self.library = library
        self.provenance = provenance or Provenance()
        self._clock = clock
        self._new_id = new_id

    def make(
        self, answer: Answer, question: str, retrieval: Mapping[str, Setting] | None
    ) -> AnswerBundle:
        """The signed bundle of ``answer`` to ``question`` (with a new answer id)."""
        settings = None if retrieval is None else {**self.provenance.retrieval, **retrieval}
        bundle = AnswerBundle(
            answer_id=self._new_id(),
            created_at=self._clock().astimezone(UTC).isoformat(timespec="seconds"),
            question_sha256=question_sha256(question),
            answer=answer.text,
            grounded=answer.grounded,
            citations=tuple(cited_spans(answer.citations, self.library().documents)),
            model=answer.model,
            model_sha256=self.provenance.model_sha256(),
            prompt_template_version=PROMPT_TEMPLATE_VERSION,
            retrieval=settings,
        )
        return self.sign(bundle)

    def sign(self, bundle: AnswerBundle) -> AnswerBundle:
        """``bundle`` signed with the installation's current key."""
        key_id, value = self.signer.sign(bundle.signed_bytes())
        encoded = base64.b64encode(value).decode("ascii")
        return bundle.signed(Signature(self.signer.algorithm, key_id, encoded))

    def keep(
        self,
        answer: Answer,
        *,
        question: str,
        user_id: str,
        retrieval: Mapping[str, Setting] | None,
    ) -> Answer:
        """``answer`` with the id of its bundle, made and kept for ``user_id``; when the
        bundle cannot be kept the answer is still given, without an id, and a warning is
        logged (the answer must not be lost to a full disk)."""
        try:
            bundle = self.make(answer, question, retrieval)
            self.store.put(user_id, bundle)
        except Exception as exc:
            log.warning("the answer bundle could not be kept: %s", exc)
            return answer
        return replace(answer, answer_id=bundle.answer_id)

    def bundle_for(self, answer_id: str, user_id: str) -> AnswerBundle:
        """The bundle of ``answer_id`` when ``user_id`` asked it; NotFoundError otherwise,
        the same whether the id is unknown or belongs to someone else."""
        bundle = self.store.get(user_id, answer_id)
        if bundle is None:
            raise NotFoundError(f"no answer {answer_id!r}")
        return bundle

    def verify(
        self, bundle: AnswerBundle, verifier: SignatureVerifier | None = None
    ) -> Verification:
        """Check the signature (with ``verifier``, default this installation's keys), then
        every cited span against the library."""
        key_id = bundle.signature.key_id if bundle.signature else ""
        reason = signature_problem(bundle, verifier or self.signer)
        if reason:
            return Verification(Status.FORGED, key_id, len(bundle.citations), reason=reason)
        problems, notes = library_findings(bundle.citations, self.library())
        statuses = {p.status for p in problems}
        status = next((s for s in (Status.ERASED, Status.CHANGED) if s in statuses), Status.OK)
        return Verification(
            status, key_id, len(bundle.citations), problems=tuple(problems), notes=tuple(notes)
        )

    def public_key(self, key_id: str | None = None) -> str:
        """The PEM public key that verifies bundles signed with ``key_id`` (default: the
        current key); NotFoundError for an unknown key."""
        pem = self.signer.public_key(key_id)
        if pem is None:
            what = f"key {key_id}" if key_id else f"the {self.signer.algorithm} signer"
            raise NotFoundError(f"no public key for {what}")
        return pem

    def of_user(self, user_id: str) -> list[dict[str, Any]]:
        """Every bundle kept for ``user_id``, JSON-ready, oldest first (for data exports)."""
        return [b.as_dict() for b in self.store.of_user(user_id)]

    def forget_user(self, user_id: str) -> int:
        """Delete every bundle kept for ``user_id``; how many went."""
        return self.store.forget_user(user_id)

    def purge_before(self, cutoff: datetime) -> int:
        """Delete every bundle made before ``cutoff`` (the retention period); how many."""
        return self.store.purge_before(cutoff)
