"""Answer bundles: one answer, what it rests on and how it was made, signed.

A bundle names the question by its sha256 only, keeps the answer text, and for each cited
span the document's id, source and sha256, the character offsets of the span in the
document's text and the sha256 of those characters. The signature covers the canonical
JSON of every field but ``signature`` itself (``signed_bytes``): keys sorted, no white
space, UTF-8, so a reader in any language can rebuild the signed bytes from the file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from xnai.domain.errors import MalformedBundleError

BUNDLE_FORMAT = "xnai-answer-bundle"
BUNDLE_VERSION = 1
SIGNATURE_FIELD = "signature"

Setting = str | int | float | bool | None


def sha256_text(text: str) -> str:
    """Hex sha256 of ``text`` encoded as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical_json(data: Any) -> bytes:
    """The one byte form of ``data`` that is signed: sorted keys, no white space, UTF-8."""
    text = json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


@dataclass(frozen=True, slots=True)
class CitedSpan:
    """One span an answer cites: characters ``start``..``end`` of a document's text."""

    number: int
    doc_id: str
    chunk_id: str
    source: str
    title: str
    document_sha256: str
    start: int
    end: int
    text_sha256: str

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return {
            "number": self.number,
            "doc_id": self.doc_id,
            "chunk_id": self.chunk_id,
            "source": self.source,
            "title": self.title,
            "document_sha256": self.document_sha256,
            "start": self.start,
            "end": self.end,
            "text_sha256": self.text_sha256,
        }


@dataclass(frozen=True, slots=True)
class Signature:
    """Who signed a bundle (the key's public id), how, and the signature in base64."""

    algorithm: str
    key_id: str
    value: str

    def as_dict(self) -> dict[str, str]:
        """Plain JSON-ready form."""
        return {"algorithm": self.algorithm, "key_id": self.key_id, "value": self.value}


@dataclass(frozen=True, slots=True)
class AnswerBundle:
    """An answer with its cited spans and provenance; ``signature`` is None until signed."""

    answer_id: str
    created_at: str
    question_sha256: str
    answer: str
    grounded: bool
    citations: tuple[CitedSpan, ...]
    model: str
    model_sha256: str | None
    prompt_template_version: str
    retrieval: Mapping[str, Setting] | None  # None: answered without retrieval
    signature: Signature | None = None
    version: int = BUNDLE_VERSION

    def unsigned(self) -> dict[str, Any]:
        """Every field but the signature, JSON-ready: what the signature covers."""
        return {
            "format": BUNDLE_FORMAT,
            "version": self.version,
            "answer_id": self.answer_id,
            "created_at": self.created_at,
            "question_sha256": self.question_sha256,
            "answer": self.answer,
            "grounded": self.grounded,
            "citations": [c.as_dict() for c in self.citations],
            "model": {"name": self.model, "sha256": self.model_sha256},
            "prompt_template_version": self.prompt_template_version,
            "retrieval": dict(self.retrieval) if self.retrieval is not None else None,
        }

    def signed_bytes(self) -> bytes:
        """The bytes the signature is made over."""
        return canonical_json(self.unsigned())

    def as_dict(self) -> dict[str, Any]:
        """The whole bundle, JSON-ready (the signature as its own member)."""
        body = self.unsigned()
        body[SIGNATURE_FIELD] = self.signature.as_dict() if self.signature else None
        return body

    def to_json(self) -> str:
        """The bundle as a file holds it: indented for people, keys sorted."""
        return json.dumps(self.as_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    def signed(self, signature: Signature) -> AnswerBundle:
        """This bundle with ``signature``."""
        return replace(self, signature=signature)

    def made_before(self, cutoff: datetime) -> bool:
        """True when the bundle was made before ``cutoff`` (a time without a zone is UTC)."""
        try:
            made = datetime.fromisoformat(self.created_at)
        except ValueError:
            return False
        return (made if made.tzinfo else made.replace(tzinfo=UTC)) < cutoff


@runtime_checkable
class AnswerBundleStore(Protocol):
    """Signed answer bundles kept per asker, keyed by answer id (encrypted at rest)."""

    def put(self, user_id: str, bundle: AnswerBundle) -> None:
        """Keep ``bundle`` as an answer to ``user_id``."""
        ...

    def get(self, user_id: str, answer_id: str) -> AnswerBundle | None:
        """The bundle of ``answer_id`` when ``user_id`` asked it; None otherwise (unknown,
        malformed or somebody else's id alike)."""
        ...

    def of_user(self, user_id: str) -> list[AnswerBundle]:
        """Every bundle kept for ``user_id``, oldest first."""
        ...

    def forget_user(self, user_id: str) -> int:
        """Delete every bundle kept for ``user_id``; how many went."""
        ...

    def purge_before(self, cutoff: datetime) -> int:
        """Delete every bundle made before ``cutoff``, whoever asked; how many went."""
        ...


def parse_bundle(data: bytes | str) -> AnswerBundle:
    """The bundle in ``data`` (a file's bytes); MalformedBundleError saying what is wrong."""
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedBundleError(f"not an answer bundle: the file is not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise MalformedBundleError("not an answer bundle: the file holds no JSON object")
    return bundle_from(body)


def bundle_from(body: Mapping[str, Any]) -> AnswerBundle:
    """The bundle of a JSON object; MalformedBundleError naming the first bad field."""
    if body.get("format") != BUNDLE_FORMAT:
        raise MalformedBundleError(f"not an answer bundle: format is not {BUNDLE_FORMAT!r}")
    version = _field(body, "version", int)
    if version != BUNDLE_VERSION:
        raise MalformedBundleError(
            f"answer bundle version {version} is not supported (this release reads "
            f"version {BUNDLE_VERSION})"
        )
    model = _field(body, "model", dict)
    retrieval = body.get("retrieval")
    if retrieval is not None and not isinstance(retrieval, dict):
        raise MalformedBundleError("malformed answer bundle: retrieval is not an object")
    return AnswerBundle(
        answer_id=_field(body, "answer_id", str),
        created_at=_field(body, "created_at", str),
        question_sha256=_field(body, "question_sha256", str),
        answer=_field(body, "answer", str),
        grounded=_field(body, "grounded", bool),
        citations=tuple(_span(c) for c in _field(body, "citations", list)),
        model=_field(model, "name", str, where="model."),
        model_sha256=_optional(model, "sha256", where="model."),
        prompt_template_version=_field(body, "prompt_template_version", str),
        retrieval=retrieval,
        signature=_signature(body.get(SIGNATURE_FIELD)),
        version=version,
    )


def _span(item: Any) -> CitedSpan:
    if not isinstance(item, dict):
        raise MalformedBundleError("malformed answer bundle: a citation is not an object")
    w = "citations[]."
    span = CitedSpan(
        number=_field(item, "number", int, where=w),
        doc_id=_field(item, "doc_id", str, where=w),
        chunk_id=_field(item, "chunk_id", str, where=w),
        source=_field(item, "source", str, where=w),
        title=_field(item, "title", str, where=w),
        document_sha256=_field(item, "document_sha256", str, where=w),
        start=_field(item, "start", int, where=w),
        end=_field(item, "end", int, where=w),
        text_sha256=_field(item, "text_sha256", str, where=w),
    )
    if not 0 <= span.start <= span.end:
        raise MalformedBundleError(
            f"malformed answer bundle: citation [{span.number}] spans {span.start}-{span.end}"
        )
    return span


def _signature(item: Any) -> Signature:
    if not isinstance(item, dict):
        raise MalformedBundleError("malformed answer bundle: it carries no signature")
    w = "signature."
    return Signature(
        algorithm=_field(item, "algorithm", str, where=w),
        key_id=_field(item, "key_id", str, where=w),
        value=_field(item, "value", str, where=w),
    )


def _field(body: Mapping[str, Any], name: str, kind: type, *, where: str = "") -> Any:
    if name not in body:
        raise MalformedBundleError(f"malformed answer bundle: {where}{name} is missing")
    value = body[name]
    # JSON has one kind of number and true/false apart: a bool is never an int here.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise MalformedBundleError(
            f"malformed answer bundle: {where}{name} is not {_KINDS.get(kind, kind.__name__)}"
        )
    return value


def _optional(body: Mapping[str, Any], name: str, *, where: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise MalformedBundleError(f"malformed answer bundle: {where}{name} is not a string")
    return value


_KINDS = {
    str: "a string",
    int: "a whole number",
    bool: "true or false",
    dict: "an object",
    list: "a list",
}
