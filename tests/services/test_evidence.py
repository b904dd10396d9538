"""Evidence selection: exact spans, the budget, neighbours, merging and odd input."""

from __future__ import annotations

from collections.abc import Sequence

from xnai.adapters.memory import FakeChatModel, HashingEmbedder
from xnai.domain.models import Chunk, Hit
from xnai.services.evidence import (
    EvidencePolicy,
    EvidenceSelector,
    dense_scorer,
    lexical_scores,
    mixed_scorer,
    split_sentences,
)

COUNT = FakeChatModel().count_tokens

DOC = (
    "Preamble that is not retrieved. "
    "The coolant pump runs at 1450 rpm. It was installed in 2019. The valve is brass. "
    "Smith et al. measured the flow in 2020. The pump draws 3 kW at full speed. "
    "Maintenance happens every spring. The tank holds 200 litres."
)


def chunk_of(doc: str, start: int, end: int, doc_id: str = "d1", ordinal: int = 0) -> Chunk:
    return Chunk(f"{doc_id}:{ordinal}", doc_id, ordinal, start, end, doc[start:end])


def hits_of(*chunks: Chunk) -> list[Hit]:
    return [Hit(c, 1.0 / (i + 1), title=f"T {c.doc_id}") for i, c in enumerate(chunks)]


def words_in(question: str, sentences: Sequence[str]) -> list[float]:
    """A transparent scorer for tests: shared lower-case words."""
    q = set(question.lower().split())
    return [float(len(q & set(s.lower().rstrip(".").split()))) for s in sentences]


def selector(neighbours: int = 1, scorer: object = words_in, **policy: float) -> EvidenceSelector:
    return EvidenceSelector(
        scorer,  # type: ignore[arg-type]
        COUNT,
        EvidencePolicy(neighbours=neighbours, **policy),
    )


def spans_are_exact(selected: list[Hit], docs: dict[str, str]) -> None:
    for h in selected:
        c = h.chunk
        assert docs[c.doc_id][c.start : c.end] == c.text
        assert c.text == c.text.strip() and c.text


def quoted_cost(selected: list[Hit], tag_tokens: int = 24) -> int:
    return sum(COUNT(h.chunk.text) + tag_tokens for h in selected)


def test_sentences_keep_document_offsets_and_abbreviations() -> None:
    start = DOC.index("The coolant")
    sentences = split_sentences(DOC[start:], start, COUNT, 80)
    assert [s.text for s in sentences][3] == "Smith et al. measured the flow in 2020."
    for s in sentences:
        assert DOC[s.start : s.end] == s.text
    assert [s.index for s in sentences] == list(range(len(sentences)))


def test_the_best_sentence_comes_with_its_neighbours_as_one_exact_span() -> None:
    c = chunk_of(DOC, DOC.index("The coolant"), len(DOC))
    [span] = selector().select("how much power does the pump draw at full", hits_of(c), 55)
    assert span.chunk.text == (
        "Smith et al. measured the flow in 2020. The pump draws 3 kW at full speed. "
        "Maintenance happens every spring."
    )
    spans_are_exact([span], {"d1": DOC})
    assert span.chunk.chunk_id == c.chunk_id and span.chunk.doc_id == "d1"


def test_without_neighbours_only_the_sentence_is_shown() -> None:
    c = chunk_of(DOC, DOC.index("The coolant"), len(DOC))
    [span] = selector(neighbours=0).select("pump draw full speed", hits_of(c), 40)
    assert span.chunk.text == "The pump draws 3 kW at full speed."


def test_windows_that_are_not_adjacent_stay_separate_spans_best_first() -> None:
    c = chunk_of(DOC, DOC.index("The coolant"), len(DOC))
    question = "rpm 1450 coolant pump runs tank holds litres"
    spans = selector(neighbours=0).select(question, hits_of(c), 70)
    texts = [s.chunk.text for s in spans]
    assert texts == ["The coolant pump runs at 1450 rpm.", "The tank holds 200 litres."]
    spans_are_exact(spans, {"d1": DOC})


def test_adjacent_windows_merge_into_one_span() -> None:
    c = chunk_of(DOC, DOC.index("The coolant"), len(DOC))
    # Two good sentences next to each other: their windows overlap, so one quotation.
    question = "valve brass installed 2019"
    [span] = selector(neighbours=1).select(question, hits_of(c), 60)
    assert span.chunk.text == (
        "The coolant pump runs at 1450 rpm. It was installed in 2019. The valve is brass. "
        "Smith et al. measured the flow in 2020."
    )


def test_the_budget_counts_text_and_markup_and_is_never_exceeded() -> None:
    doc = " ".join(f"Sentence {i} mentions pump number {i} and nothing else." for i in range(80))
    chunks = [chunk_of(doc, 0, len(doc) // 2, ordinal=0)]
    chunks.append(chunk_of(doc, len(doc) // 2 + 1, len(doc), ordinal=1))
    for budget in (0, 10, 40, 100, 300):
        spans = selector().select("pump number 7 mentions", hits_of(*chunks), budget)
        assert quoted_cost(spans) <= budget
        spans_are_exact(spans, {"d1": doc})
    assert selector().select("pump", hits_of(*chunks), 0) == []


def test_overlapping_chunks_of_one_document_are_not_quoted_twice() -> None:
    first = chunk_of(DOC, DOC.index("The coolant"), DOC.index("Maintenance") - 1, ordinal=0)
    second = chunk_of(DOC, DOC.index("Smith"), len(DOC), ordinal=1)
    spans = selector(neighbours=0).select("pump draws kW", hits_of(first, second), 400)
    quoted = [s.chunk.text for s in spans]
    assert sum(t.count("The pump draws 3 kW") for t in quoted) == 1
    spans_are_exact(spans, {"d1": DOC})


def test_one_huge_sentence_is_cut_into_exact_pieces_within_budget() -> None:
    doc = "pump " * 3000 + "valve."
    spans = selector(piece_tokens=50).select("valve", hits_of(chunk_of(doc, 0, len(doc))), 200)
    assert spans and quoted_cost(spans) <= 200
    assert any(s.chunk.text.endswith("valve.") for s in spans)
    spans_are_exact(spans, {"d1": doc})


def test_text_without_spaces_or_sentence_ends_is_cut_by_characters() -> None:
    doc = "x" * 5000

    def per_char(text: str) -> int:
        return len(text)

    sel = EvidenceSelector(words_in, per_char, EvidencePolicy(piece_tokens=64))
    spans = sel.select("anything", hits_of(chunk_of(doc, 0, len(doc))), 300)
    assert spans and sum(len(s.chunk.text) + 24 for s in spans) <= 300
    spans_are_exact(spans, {"d1": doc})


def test_non_latin_text_keeps_exact_spans() -> None:
    doc = "泵的转速是每分钟1450转。阀门是黄铜的！储罐容量为200升。Насос работает. Клапан латунный."
    embedder = HashingEmbedder()
    sel = EvidenceSelector(mixed_scorer(embedder), COUNT, EvidencePolicy(neighbours=0))
    spans = sel.select("阀门是什么材料？", hits_of(chunk_of(doc, 0, len(doc))), 400)
    assert spans
    spans_are_exact(spans, {"d1": doc})
    sentences = split_sentences(doc, 0, COUNT, 80)
    assert [s.text for s in sentences][:3] == [
        "泵的转速是每分钟1450转。",
        "阀门是黄铜的！",
        "储罐容量为200升。",
    ]


def test_a_huge_one_word_question_is_handled() -> None:
    c = chunk_of(DOC, DOC.index("The coolant"), len(DOC))
    question = "pump" * 2000  # 8,000 characters, one word
    for scorer in (
        lexical_scores,
        dense_scorer(HashingEmbedder()),
        mixed_scorer(HashingEmbedder()),
    ):
        spans = selector(scorer=scorer).select(question, hits_of(c), 100)
        assert quoted_cost(spans) <= 100
        spans_are_exact(spans, {"d1": DOC})


def test_empty_input_selects_nothing() -> None:
    assert selector().select("pump", [], 400) == []
    blank = Chunk("c", "d1", 0, 0, 3, "   ")
    assert selector().select("pump", hits_of(blank), 400) == []
    assert selector().select("", hits_of(chunk_of(DOC, 0, len(DOC))), 400) != []


def test_lexical_scores_prefer_rare_question_words() -> None:
    scores = lexical_scores(
        "does the pump run at 1450 rpm",
        ["the pump is the pump", "it runs at 1450 rpm", "nothing relevant here"],
    )
    assert scores[1] > scores[0] > scores[2] == 0.0
    assert lexical_scores("anything", []) == []


def test_dense_and_mixed_scores_follow_the_embedder() -> None:
    embedder = HashingEmbedder()
    sentences = ["the valve is brass", "coolant pump speed in rpm"]
    dense = dense_scorer(embedder)("coolant pump speed", sentences)
    assert dense[1] > dense[0]
    mixed = mixed_scorer(embedder)("coolant pump speed", sentences)
    assert mixed == [0.0, 1.0]


def test_spans_are_counted_whole_so_joins_never_break_the_budget() -> None:
    doc = " ".join(f"Pump fact {i}." for i in range(30))

    def per_char(text: str) -> int:
        return len(text)  # the spaces that join sentences cost too

    sel = EvidenceSelector(words_in, per_char, EvidencePolicy(neighbours=1, tag_tokens=0))
    for budget in range(10, 200, 7):
        spans = sel.select("pump fact 12", hits_of(chunk_of(doc, 0, len(doc))), budget)
        assert sum(len(s.chunk.text) for s in spans) <= budget
        spans_are_exact(spans, {"d1": doc})


def test_retrieval_order_counts_as_evidence() -> None:
    top = chunk_of("The pump runs. Nothing here.", 0, 28, doc_id="a")
    lower = chunk_of("The pump runs fast.", 0, 19, doc_id="b")
    hits = hits_of(top, lower)
    for prior, winner in ((0.0, "b"), (0.5, "a")):
        sel = selector(neighbours=0, rank_prior=prior)
        assert sel.select("pump runs fast", hits, 35)[0].chunk.doc_id == winner
