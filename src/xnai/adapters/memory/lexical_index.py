"""Okapi BM25 in plain Python: the reference ``LexicalIndex`` (no stemming)."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from xnai.adapters.index.texts import LazyTextIndex
from xnai.domain.access import RowFilter

TEXTS_FILE = "memory_lexical.json"
_WORD = re.compile(r"\w+")
# Lucene's English stop words.
STOPWORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
    }
)


def tokenize(text: str) -> list[str]:
    """Lower-case words without English stop words."""
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


@dataclass(frozen=True, slots=True)
class _Built:
    """Term frequencies, lengths and document frequencies of one set of texts."""

    ids: tuple[str, ...]
    terms: tuple[Counter[str], ...]
    lengths: tuple[int, ...]
    df: Counter[str]
    avg_length: float


class MemoryLexicalIndex(LazyTextIndex[_Built]):
    """BM25 (Lucene's idf, always positive) over texts kept in a dict; rebuilt lazily."""

    def __init__(self, k1: float = 0.9, b: float = 0.4) -> None:
        super().__init__()
        self.k1 = k1
        self.b = b

    def search(
        self, query: str, k: int, allowed: RowFilter | None = None
    ) -> list[tuple[str, float]]:
        """Top ``k`` (chunk id, BM25 score > 0), best first, ties by index order; with
        ``allowed``, statistics and scores come from the allowed rows alone."""
        built = self._current()
        if allowed is not None:
            allowed.check(len(built.ids))
        terms = set(tokenize(query))
        if k <= 0 or not terms:
            return []
        rows = [r for r in range(len(built.ids)) if allowed is None or allowed.mask[r]]
        stats = _stats(built, rows, terms) if allowed is not None else _Stats.of(built)
        scored = []
        for row in rows:
            score = self._score(built, row, terms, stats)
            if score > 0:
                scored.append((-score, row, built.ids[row]))
        scored.sort()
        return [(chunk_id, -neg) for neg, _, chunk_id in scored[:k]]

    def save(self, directory: Path) -> list[Path]:
        """Write the ids and texts as JSON into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / TEXTS_FILE
        with self._lock:
            items = [[i, t] for i, t in self._texts.items()]
        path.write_text(json.dumps({"texts": items}, ensure_ascii=False), "utf-8")
        return [path]

    def load(self, directory: Path) -> None:
        """Replace the contents with the texts saved in ``directory``."""
        payload = json.loads((Path(directory) / TEXTS_FILE).read_text("utf-8"))
        texts = {str(i): str(t) for i, t in payload["texts"]}
        with self._lock:
            self._texts = texts
            self._built = None

    def _build(self, texts: dict[str, str]) -> _Built:
        ids = tuple(texts)
        terms = tuple(Counter(tokenize(texts[i])) for i in ids)
        lengths = tuple(sum(t.values()) for t in terms)
        df: Counter[str] = Counter()
        for t in terms:
            df.update(t.keys())
        avg = sum(lengths) / len(lengths) if lengths else 0.0
        return _Built(ids, terms, lengths, df, avg)

    def _score(self, built: _Built, row: int, terms: set[str], stats: _Stats) -> float:
        tf, n = built.terms[row], stats.count
        norm = self.k1 * (1 - self.b + self.b * built.lengths[row] / (stats.avg_length or 1))
        score = 0.0
        for term in terms & tf.keys():
            df = stats.df[term]
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            score += idf * tf[term] * (self.k1 + 1) / (tf[term] + norm)
        return score


@dataclass(frozen=True, slots=True)
class _Stats:
    """The corpus statistics a score depends on: rows, document frequencies, mean length."""

    count: int
    df: Counter[str]
    avg_length: float

    @classmethod
    def of(cls, built: _Built) -> _Stats:
        return cls(len(built.ids), built.df, built.avg_length)


def _stats(built: _Built, rows: list[int], terms: set[str]) -> _Stats:
    """Statistics of the given rows only, so hidden rows never weigh on a score."""
    df: Counter[str] = Counter()
    for row in rows:
        df.update(terms & built.terms[row].keys())
    total = sum(built.lengths[row] for row in rows)
    return _Stats(len(rows), df, total / len(rows) if rows else 0.0)
