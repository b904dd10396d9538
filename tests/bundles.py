"""Answer bundles to store and check, made without a library."""

from __future__ import annotations

from xnai.domain.bundles import AnswerBundle, CitedSpan, Signature, sha256_text

SPAN_TEXT = "The coolant pump of reactor seven runs at 1450 rpm."


def sample_bundle(
    answer_id: str = "a" * 32, *, answer: str = "It runs at 1450 rpm. [1]", when: str = ""
) -> AnswerBundle:
    """A signed-looking bundle (its signature is not real) citing one span."""
    span = CitedSpan(
        number=1,
        doc_id="d_pump",
        chunk_id="c_pump",
        source="/lib/pump.txt",
        title="Pump",
        document_sha256="0" * 64,
        start=0,
        end=len(SPAN_TEXT),
        text_sha256=sha256_text(SPAN_TEXT),
    )
    return AnswerBundle(
        answer_id=answer_id,
        created_at=when or "2026-12-05T10:00:00+00:00",
        question_sha256=sha256_text("How fast does the pump run?"),
        answer=answer,
        grounded=True,
        citations=(span,),
        model="fake",
        model_sha256=None,
        prompt_template_version="1",
        retrieval={"mode": "hybrid", "top_k": 5, "min_score": 0.2},
        signature=Signature("ed25519", "ee73fdefafef", "c2lnbmF0dXJl"),
    )
