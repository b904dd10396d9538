"""Evidence selection: the sentences of retrieved chunks that bear on a question, within a
token budget, each quoted as an exact span of its document.

Prompt evaluation is what a user waits for on a CPU, so the model is shown the best
sentences of the retrieved chunks (each with its neighbours for context) rather than the
whole chunks. Every selected span is a slice of one chunk's text, so its document offsets
are exact: ``document[start:end] == text``. Adjacent or overlapping windows of one chunk
merge into one span; windows that are not adjacent stay separate spans (separate
citations), because a citation's text must be one contiguous piece of its document.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from xnai.domain.models import Hit
from xnai.domain.ports import Embedder

TokenCount = Callable[[str], int]
# Scores of each sentence for the question; higher bears more on it.
Scorer = Callable[[str, Sequence[str]], Sequence[float]]

# A sentence ends at terminal punctuation (and closing quotes or brackets) before a space
# that is not followed by a lower-case letter ("et al. reported", "e.g. mice" stay whole),
# after CJK terminal punctuation, or at a line break.
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s+(?![a-z]))|[。！？]+[」』”’)]*|\n")
_NON_SPACE = re.compile(r"\S+")
_WORD = re.compile(r"\w+")
# English function words, and the words a question is phrased with: they match everywhere
# and bear on nothing ("Is it true that ...?").
_STOPWORD_TEXT = (
    "a about all also an and any are as at be been but by can could did do does for from had "
    "has have how i if in into is it its may might more most no not of on or should so such "
    "than that the their them then there these they this those to true was we were what when "
    "where which while who whom why will with would yes you"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


@dataclass(frozen=True, slots=True)
class Sentence:
    """A sentence (or a piece of a long one) of a retrieved chunk."""

    hit: int  # position of its hit in retrieval order
    index: int  # position among its chunk's sentences
    start: int  # document offsets: document[start:end] == text
    end: int
    text: str
    tokens: int


def split_sentences(
    text: str, offset: int, count: TokenCount, max_tokens: int, hit: int = 0
) -> list[Sentence]:
    """The sentences of ``text`` (a chunk starting at document offset ``offset``), each cut
    into pieces of at most ``max_tokens`` tokens when longer; whitespace trimmed."""
    spans: list[tuple[int, int, int]] = []
    cut = 0
    for match in _SENTENCE_END.finditer(text):
        spans.extend(_fit(text, cut, match.end(), count, max_tokens))
        cut = match.end()
    spans.extend(_fit(text, cut, len(text), count, max_tokens))
    return [
        Sentence(hit, i, offset + s, offset + e, text[s:e], n) for i, (s, e, n) in enumerate(spans)
    ]


def _fit(
    text: str, start: int, end: int, count: TokenCount, limit: int
) -> list[tuple[int, int, int]]:
    """``text[start:end]`` trimmed, as pieces of at most ``limit`` tokens: cut between words,
    and a word that is longer still between characters."""
    piece = text[start:end]
    stripped = piece.strip()
    if not stripped:
        return []
    start += len(piece) - len(piece.lstrip())
    end = start + len(stripped)
    tokens = count(stripped)
    if tokens <= limit:
        return [(start, end, tokens)]
    words = [m.span() for m in _NON_SPACE.finditer(text, start, end)]
    if len(words) == 1:
        parts = math.ceil(tokens / limit)
        size = math.ceil((end - start) / parts)
        if size >= end - start:  # a single character over the limit: keep it whole
            return [(start, end, tokens)]
        return [
            piece
            for cut in range(start, end, size)
            for piece in _fit(text, cut, min(cut + size, end), count, limit)
        ]
    return _pack_words(text, words, count, limit)


def _pack_words(
    text: str, words: list[tuple[int, int]], count: TokenCount, limit: int
) -> list[tuple[int, int, int]]:
    """Consecutive words packed into pieces of at most ``limit`` tokens (a longer word alone
    is cut further by ``_fit``)."""
    out: list[tuple[int, int, int]] = []
    first, last, used = -1, -1, 0
    for start, end in words:
        cost = count(text[start:end]) + 1
        if first >= 0 and used + cost > limit:
            out.extend(_fit(text, first, last, count, limit))
            first = -1
        if first < 0:
            first, used = start, 0
        last, used = end, used + cost
    if first >= 0:
        out.extend(_fit(text, first, last, count, limit))
    return out


# -- scorers ----------------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.casefold()) if w not in _STOPWORDS]


def lexical_scores(
    question: str, sentences: Sequence[str], k1: float = 1.2, b: float = 0.75
) -> list[float]:
    """BM25 of each sentence for the question's words (function words left out), with
    document frequencies counted over the given sentences."""
    docs = [_words(s) for s in sentences]
    if not docs:
        return []
    terms = set(_words(question))
    df = Counter(t for d in docs for t in set(d) & terms)
    n = len(docs)
    avg = max(sum(len(d) for d in docs) / n, 1.0)
    idf = {t: math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in df}
    scores = []
    for d in docs:
        tf = Counter(w for w in d if w in idf)
        norm = k1 * (1 - b + b * len(d) / avg)
        scores.append(sum(idf[t] * f * (k1 + 1) / (f + norm) for t, f in tf.items()))
    return scores


def dense_scorer(embedder: Embedder) -> Scorer:
    """Cosine similarity of each sentence to the question, embedded in one batch."""

    def scores(question: str, sentences: Sequence[str]) -> list[float]:
        if not sentences:
            return []
        vectors = np.asarray(embedder.embed([question, *sentences]))
        return [float(s) for s in vectors[1:] @ vectors[0]]

    return scores


def mixed_scorer(embedder: Embedder, lexical_weight: float = 0.5) -> Scorer:
    """Dense and lexical scores, each scaled to [0, 1] over the candidates, then mixed."""
    dense = dense_scorer(embedder)

    def scores(question: str, sentences: Sequence[str]) -> list[float]:
        d = _unit_range(dense(question, sentences))
        lex = _unit_range(lexical_scores(question, sentences))
        return [(1 - lexical_weight) * x + lexical_weight * y for x, y in zip(d, lex, strict=True)]

    return scores


def evidence_scorer(embedder: Embedder) -> Scorer:
    """The scorer answers use (chosen by measurement; see the evidence explanation)."""
    return mixed_scorer(embedder)


def _unit_range(values: Sequence[float]) -> list[float]:
    low, high = min(values, default=0.0), max(values, default=0.0)
    if high - low <= 1e-12:
        return [0.0 for _ in values]
    return [(v - low) / (high - low) for v in values]


# -- selection --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EvidencePolicy:
    """Knobs of evidence selection."""

    neighbours: int = 1  # sentences of context on each side of a chosen one
    piece_tokens: int = 160  # a longer sentence is cut into pieces of at most this
    tag_tokens: int = 24  # the quotation markup around each quoted span (when not counted)
    # Subtracted from a sentence's score (scaled to [0, 1]) per place its chunk ranked
    # below the first: retrieval's order is evidence too.
    rank_prior: float = 0.1


class EvidenceSelector:
    """Chooses what the model is shown: the best-scoring sentences of the retrieved chunks,
    each with its neighbours, within a token budget, as exact spans best first."""

    def __init__(
        self,
        scorer: Scorer,
        count: TokenCount,
        policy: EvidencePolicy = EvidencePolicy(),
        markup: Callable[[Hit], int] | None = None,
    ) -> None:
        self.scorer = scorer
        self.count = count
        self.policy = policy
        # Tokens of the quotation markup around one span of a hit (its title, say).
        self.markup = markup or (lambda _hit: policy.tag_tokens)

    def sentences(self, hits: Sequence[Hit]) -> list[Sentence]:
        """Every sentence of the hits' chunks, in retrieval order, except those within a span
        already seen (the overlap between neighbouring chunks of one document)."""
        out: list[Sentence] = []
        seen: dict[str, list[tuple[int, int]]] = {}
        for i, hit in enumerate(hits):
            c = hit.chunk
            spans = seen.setdefault(c.doc_id, [])
            for s in split_sentences(c.text, c.start, self.count, self.policy.piece_tokens, i):
                if not any(a <= s.start and s.end <= b for a, b in spans):
                    out.append(s)
            spans.extend((s.start, s.end) for s in out if s.hit == i)
        return out

    def select(self, question: str, hits: Sequence[Hit], budget: int) -> list[Hit]:
        """The selected spans as hits over narrowed chunks, best first; their text and
        markup together take at most ``budget`` tokens."""
        if budget <= 0 or not hits:
            return []
        sentences = self.sentences(hits)
        if not sentences:
            return []
        raw = _unit_range(list(self.scorer(question, [s.text for s in sentences])))
        scores = [x - self.policy.rank_prior * s.hit for x, s in zip(raw, sentences, strict=True)]
        markup = [self.markup(h) for h in hits]
        chosen = self._choose(sentences, scores, markup, budget)
        # Sentences were counted one by one; the spans' own counts decide.
        while chosen and self._spent(hits, sentences, chosen, markup) > budget:
            chosen.discard(_weakest_end(sentences, scores, chosen))
        return _spans(hits, sentences, scores, chosen)

    def _spent(
        self, hits: Sequence[Hit], sentences: list[Sentence], chosen: set[int], markup: list[int]
    ) -> int:
        """Tokens of the spans the chosen sentences make, joins and markup included."""
        return sum(
            self.count(_text(hits, sentences, run)) + markup[sentences[run[0]].hit]
            for run in _runs_of(sentences, chosen)
        )

    def _choose(
        self, sentences: list[Sentence], scores: list[float], markup: list[int], budget: int
    ) -> set[int]:
        """Positions of the chosen sentences: best first, each with its neighbours when they
        fit, else alone; a sentence that does not fit leaves room for a shorter one."""
        chosen: set[int] = set()
        order = sorted(range(len(sentences)), key=lambda i: (-scores[i], i))
        for centre in order:
            if centre in chosen:
                continue
            for window in (self._window(sentences, centre), [centre]):
                cost = _cost(sentences, chosen, window, markup)
                if cost <= budget:
                    chosen.update(window)
                    budget -= cost
                    break
        return chosen

    def _window(self, sentences: list[Sentence], centre: int) -> list[int]:
        """``centre`` and its neighbours within the same chunk."""
        n = self.policy.neighbours
        c = sentences[centre]
        return [
            i
            for i in range(max(0, centre - n), min(len(sentences), centre + n + 1))
            if sentences[i].hit == c.hit and abs(sentences[i].index - c.index) <= n
        ]


def _cost(sentences: list[Sentence], chosen: set[int], window: list[int], markup: list[int]) -> int:
    """Tokens that adding ``window`` costs: its new sentences and the markup of any span it
    opens rather than extends."""
    new = [i for i in window if i not in chosen]
    text = sum(sentences[i].tokens for i in new)
    hit = sentences[window[0]].hit
    before = _runs(sentences, chosen, hit)
    after = _runs(sentences, chosen | set(new), hit)
    return text + (after - before) * markup[hit]


def _weakest_end(sentences: list[Sentence], scores: list[float], chosen: set[int]) -> int:
    """The lowest-scoring chosen sentence at either end of its span (dropping it never
    splits a span in two)."""
    ends = [
        i
        for i in chosen
        if not (i - 1 in chosen and _follows(sentences, i - 1, i))
        or not (i + 1 in chosen and _follows(sentences, i, i + 1))
    ]
    return min(ends, key=lambda i: (scores[i], -i))


def _runs(sentences: list[Sentence], chosen: set[int], hit: int) -> int:
    """How many contiguous spans the chosen sentences of one hit form."""
    mine = sorted(i for i in chosen if sentences[i].hit == hit)
    return sum(1 for k, i in enumerate(mine) if k == 0 or not _follows(sentences, mine[k - 1], i))


def _follows(sentences: list[Sentence], before: int, after: int) -> bool:
    """Whether sentence ``after`` comes right after ``before`` in the same chunk."""
    a, b = sentences[before], sentences[after]
    return a.hit == b.hit and b.index == a.index + 1


def _spans(
    hits: Sequence[Hit], sentences: list[Sentence], scores: list[float], chosen: set[int]
) -> list[Hit]:
    """Contiguous chosen sentences of one chunk as one hit over the narrowed chunk, ordered
    by the best score within each span."""
    spans = [_span(hits, sentences, scores, run) for run in _runs_of(sentences, chosen)]
    spans.sort(key=lambda s: (-s[0], s[1]))
    return [hit for _, _, hit in spans]


def _span(
    hits: Sequence[Hit], sentences: list[Sentence], scores: list[float], run: list[int]
) -> tuple[float, int, Hit]:
    first, last = sentences[run[0]], sentences[run[-1]]
    hit = hits[first.hit]
    text = _text(hits, sentences, run)
    narrowed = replace(hit.chunk, start=first.start, end=last.end, text=text)
    return max(scores[i] for i in run), run[0], replace(hit, chunk=narrowed)


def _text(hits: Sequence[Hit], sentences: list[Sentence], run: list[int]) -> str:
    """The chunk's text from the run's first sentence to its last, joins included."""
    first, last = sentences[run[0]], sentences[run[-1]]
    chunk = hits[first.hit].chunk
    return chunk.text[first.start - chunk.start : last.end - chunk.start]


def _runs_of(sentences: list[Sentence], chosen: set[int]) -> list[list[int]]:
    """The chosen sentences grouped into runs that are contiguous in one chunk."""
    runs: list[list[int]] = []
    for i in sorted(chosen):
        if runs and _follows(sentences, runs[-1][-1], i):
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs
