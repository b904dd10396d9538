"""BM25 keyword search with bm25s, re-indexed lazily after changes."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xnai.domain.errors import ConfigError

logger = logging.getLogger(__name__)

TEXTS_FILE = "lexical.jsonl"
META_FILE = "lexical.json"
BM25S_DIR = "bm25s"
_WORD = re.compile(r"\w+")
_POSSESSIVE = re.compile(r"['\u2019]s\b")


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """An immutable built index: searches use one while a rebuild makes the next."""

    ids: tuple[str, ...]
    retriever: Any  # bm25s.BM25, or None when no text has a single term


class Bm25LexicalIndex:
    """Okapi BM25 (Lucene variant) over chunk texts; defaults are Anserini's for SciFact."""

    def __init__(self, k1: float = 0.9, b: float = 0.4, *, stem: bool = True) -> None:
        self.k1 = k1
        self.b = b
        self._bm25s = _import_bm25s()
        # Lucene's English stop words, the list Anserini uses.
        self._stopwords = frozenset(self._bm25s.stopwords.STOPWORDS_EN)
        self._stem = _english_stemmer() if stem else None
        # Saved with the index: a load with another analyzer re-indexes from the texts.
        self.analyzer = "word-lucene-stop" + ("+snowball-english" if self._stem else "")
        self._texts: dict[str, str] = {}  # insertion order is index order
        self._snapshot: _Snapshot | None = _Snapshot((), None)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._texts)

    def ids(self) -> list[str]:
        """Chunk ids in index order."""
        with self._lock:
            return list(self._texts)

    def tokenize(self, text: str) -> list[str]:
        """Lowercase words without English stop words, stemmed when a stemmer is available."""
        words = _WORD.findall(_POSSESSIVE.sub("", text.lower()))
        terms = [word for word in words if word not in self._stopwords]
        return self._stem(terms) if self._stem else terms

    def add(self, ids: Sequence[str], texts: Sequence[str]) -> None:
        """Index texts under new chunk ids; the index is rebuilt on the next search."""
        new_ids = list(ids)
        if len(new_ids) != len(texts):
            raise ValueError(f"{len(new_ids)} ids for {len(texts)} texts")
        if len(set(new_ids)) != len(new_ids):
            raise ValueError("duplicate chunk ids in one add")
        with self._lock:
            taken = [chunk_id for chunk_id in new_ids if chunk_id in self._texts]
            if taken:
                raise ValueError(f"chunk ids already indexed: {taken[:5]}")
            self._texts.update(zip(new_ids, texts, strict=True))
            self._snapshot = None

    def remove(self, ids: set[str]) -> None:
        """Drop these chunk ids (unknown ids are ignored)."""
        with self._lock:
            doomed = [chunk_id for chunk_id in ids if chunk_id in self._texts]
            for chunk_id in doomed:
                del self._texts[chunk_id]
            if doomed:
                self._snapshot = None

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """Top ``k`` (chunk id, BM25 score > 0), best first; [] for a query of no known term."""
        snapshot = self._current()
        if k <= 0 or snapshot.retriever is None:
            return []
        token_ids = snapshot.retriever.get_tokens_ids(self.tokenize(query))
        if not token_ids:
            return []
        scores = snapshot.retriever.get_scores_from_ids(token_ids)
        return _top_positive(snapshot.ids, scores, k)

    def save(self, directory: Path) -> list[Path]:
        """Write the texts (``lexical.jsonl``), settings and the bm25s index files."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with self._lock:
            snapshot = self._build_locked()
            written = [self._write_texts(directory / TEXTS_FILE, snapshot.ids)]
            written.append(self._write_meta(directory / META_FILE, len(snapshot.ids)))
            if snapshot.retriever is not None:
                written += _save_retriever(snapshot.retriever, directory / BM25S_DIR)
        return written

    def load(self, directory: Path) -> None:
        """Replace the contents with the index saved in ``directory``."""
        directory = Path(directory)
        texts = _read_texts(directory / TEXTS_FILE)
        meta = json.loads((directory / META_FILE).read_text("utf-8"))
        retriever = self._load_retriever(directory / BM25S_DIR, meta, len(texts))
        with self._lock:
            self._texts = texts
            # None makes the next search re-index (the saved files were built differently).
            fits = retriever is not None or not texts
            self._snapshot = _Snapshot(tuple(texts), retriever) if fits else None

    def _current(self) -> _Snapshot:
        """The built index, rebuilding it first if texts changed since the last build."""
        snapshot = self._snapshot
        if snapshot is not None:
            return snapshot
        with self._lock:
            return self._build_locked()

    def _build_locked(self) -> _Snapshot:
        """Build the index from the texts unless it is current; hold the lock to call."""
        if self._snapshot is None:
            ids = tuple(self._texts)
            corpus = [self.tokenize(self._texts[chunk_id]) for chunk_id in ids]
            self._snapshot = _Snapshot(ids, self._index(corpus))
        return self._snapshot

    def _index(self, corpus: list[list[str]]) -> Any:
        """A bm25s retriever over tokenised texts; None when there is no term at all."""
        if not any(corpus):
            return None
        retriever = self._bm25s.BM25(k1=self.k1, b=self.b, method="lucene", backend="numpy")
        retriever.index(corpus, show_progress=False)
        return retriever

    def _write_texts(self, path: Path, ids: Sequence[str]) -> Path:
        """One JSON object per chunk, in index order."""
        with path.open("w", encoding="utf-8") as out:
            for chunk_id in ids:
                record = {"id": chunk_id, "text": self._texts[chunk_id]}
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        return path

    def _write_meta(self, path: Path, count: int) -> Path:
        """The settings the saved index was built with."""
        meta = {"k1": self.k1, "b": self.b, "analyzer": self.analyzer, "count": count}
        path.write_text(json.dumps(meta), "utf-8")
        return path

    def _load_retriever(self, directory: Path, meta: dict[str, Any], count: int) -> Any:
        """The saved bm25s index when it fits our settings and the texts, else None."""
        settings = (meta.get("k1"), meta.get("b"), meta.get("analyzer"), meta.get("count"))
        if settings != (self.k1, self.b, self.analyzer, count) or not directory.is_dir():
            logger.info("lexical index in %s was built differently; re-indexing", directory)
            return None
        retriever = self._bm25s.BM25.load(str(directory), show_progress=False)
        if retriever.scores["num_docs"] != count:
            raise ValueError(f"{directory} does not match {TEXTS_FILE}: rebuild the index")
        return retriever


def _import_bm25s() -> Any:
    """The bm25s module, imported on first use (it is optional)."""
    try:
        import bm25s
    except ImportError as exc:
        raise ConfigError(
            "the BM25 lexical index needs bm25s; install it with: pip install 'xnai[bm25]'"
        ) from exc
    return bm25s


def _english_stemmer() -> Callable[[list[str]], list[str]] | None:
    """PyStemmer's Snowball English stemmer, or None (with a warning) when not installed."""
    try:
        import Stemmer
    except ImportError:
        logger.warning("PyStemmer is not installed: BM25 runs without stemming")
        return None
    stem: Callable[[list[str]], list[str]] = Stemmer.Stemmer("english").stemWords
    return stem


def _top_positive(ids: Sequence[str], scores: np.ndarray, k: int) -> list[tuple[str, float]]:
    """The ``k`` best positive scores as (id, score), best first; ties by index order."""
    k = min(k, len(ids))
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.lexsort((top, -scores[top]))]
    return [(ids[row], float(scores[row])) for row in top if scores[row] > 0]


def _save_retriever(retriever: Any, directory: Path) -> list[Path]:
    """Write the bm25s index files; return their paths."""
    retriever.save(str(directory), show_progress=False)
    return sorted(path for path in directory.iterdir() if path.is_file())


def _read_texts(path: Path) -> dict[str, str]:
    """Chunk id -> text from ``lexical.jsonl``, in file order."""
    texts: dict[str, str] = {}
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            texts[str(record["id"])] = str(record["text"])
    return texts
