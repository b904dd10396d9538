"""BM25 keyword search with bm25s, re-indexed lazily after changes.

With a key ring, the saved texts and the index arrays (vocabulary included) are encrypted
with the user_data key; they are decrypted into memory once, at load.
"""

from __future__ import annotations

import io
import json
import logging
import math
import re
import zipfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xnai.adapters.index.texts import LazyTextIndex
from xnai.adapters.optional import optional_import
from xnai.domain.access import RowFilter
from xnai.domain.errors import IntegrityError
from xnai.domain.keys import USER_DATA
from xnai.domain.ports import KeyRing

logger = logging.getLogger(__name__)

TEXTS_FILE = "lexical.jsonl"
META_FILE = "lexical.json"
ARRAYS_FILE = "lexical.bm25"
ENCRYPTED_FILES = (TEXTS_FILE, ARRAYS_FILE)  # the settings file holds no text
_PARAMS = ("k1", "b", "delta", "method", "idf_method", "dtype", "int_dtype", "backend")
_POSTINGS = ("tf_indptr", "tf_rows", "tf_counts", "lengths")
FORMAT = 2  # 2: term frequencies and lengths saved too, for scores within a scope
_WORD = re.compile(r"\w+")
_POSSESSIVE = re.compile(r"['\u2019]s\b")


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """An immutable built index: searches use one while a rebuild makes the next."""

    ids: tuple[str, ...]
    retriever: Any  # bm25s.BM25, or None when no text has a single term
    postings: _Postings | None = None


@dataclass(frozen=True, slots=True)
class _Postings:
    """Term frequencies by term (rows of each term in ``rows[indptr[t]:indptr[t + 1]]``)
    and token counts by row: what scoring within a subset of the rows needs.

    The eager scores of bm25s hold the idf and mean length of the whole index; a reader
    restricted to some collections is scored with the statistics of those rows alone, so
    neither a score nor an order depends on documents the reader cannot see.
    """

    indptr: np.ndarray
    rows: np.ndarray
    counts: np.ndarray
    lengths: np.ndarray

    @classmethod
    def of(cls, corpus: list[list[str]], vocab: dict[str, int]) -> _Postings:
        terms, rows, counts = [], [], []
        for row, tokens in enumerate(corpus):
            for term, count in Counter(vocab[t] for t in tokens if t in vocab).items():
                terms.append(term)
                rows.append(row)
                counts.append(count)
        order = np.argsort(np.asarray(terms, np.int64), kind="stable")
        by_term = np.bincount(np.asarray(terms, np.int64), minlength=len(vocab))
        indptr = np.concatenate(([0], np.cumsum(by_term))).astype(np.int64)
        return cls(
            indptr,
            np.asarray(rows, np.int32)[order],
            np.asarray(counts, np.float32)[order],
            np.asarray([len(tokens) for tokens in corpus], np.float32),
        )

    def scores(self, token_ids: list[int], mask: np.ndarray, k1: float, b: float) -> np.ndarray:
        """Lucene BM25 of every row for the query terms, with the statistics of ``mask``."""
        scores = np.zeros(len(self.lengths), np.float64)
        n = int(mask.sum())
        if n == 0:
            return scores
        mean = float(self.lengths[mask].mean()) or 1.0
        for term in token_ids:
            start, end = self.indptr[term], self.indptr[term + 1]
            rows, tf = self.rows[start:end], self.counts[start:end]
            keep = mask[rows]
            rows, tf = rows[keep], tf[keep].astype(np.float64)
            if len(rows) == 0:
                continue
            idf = math.log(1 + (n - len(rows) + 0.5) / (len(rows) + 0.5))
            norm = k1 * (1 - b + b * self.lengths[rows] / mean)
            scores[rows] += idf * tf / (tf + norm)
        return scores


class Bm25LexicalIndex(LazyTextIndex[_Snapshot]):
    """Okapi BM25 (Lucene variant) over chunk texts; defaults are Anserini's for SciFact."""

    def __init__(
        self,
        k1: float = 0.9,
        b: float = 0.4,
        *,
        stem: bool = True,
        keyring: KeyRing | None = None,
    ) -> None:
        super().__init__(_Snapshot((), None))
        self.k1 = k1
        self.b = b
        self._keyring = keyring
        self._bm25s = _import_bm25s()
        # Lucene's English stop words, the list Anserini uses.
        self._stopwords = frozenset(self._bm25s.stopwords.STOPWORDS_EN)
        self._stem = _english_stemmer() if stem else None
        # Saved with the index: a load with another analyzer re-indexes from the texts.
        self.analyzer = "word-lucene-stop" + ("+snowball-english" if self._stem else "")

    def tokenize(self, text: str) -> list[str]:
        """Lowercase words without English stop words, stemmed when a stemmer is available."""
        words = _WORD.findall(_POSSESSIVE.sub("", text.lower()))
        terms = [word for word in words if word not in self._stopwords]
        return self._stem(terms) if self._stem else terms

    def search(
        self, query: str, k: int, allowed: RowFilter | None = None
    ) -> list[tuple[str, float]]:
        """Top ``k`` (chunk id, BM25 score > 0), best first; [] for a query of no known term;
        with ``allowed``, only allowed rows are ranked, scored with their own statistics."""
        snapshot = self._current()
        if allowed is not None:
            allowed.check(len(snapshot.ids))
        if k <= 0 or snapshot.retriever is None:
            return []
        token_ids = snapshot.retriever.get_tokens_ids(self.tokenize(query))
        if not token_ids:
            return []
        if allowed is None or snapshot.postings is None:
            scores = snapshot.retriever.get_scores_from_ids(token_ids)
        else:
            mask = np.asarray(allowed.mask, dtype=np.bool_)
            scores = snapshot.postings.scores(token_ids, mask, self.k1, self.b)
        if allowed is not None:
            scores = np.where(allowed.mask, scores, 0.0)
        return _top_positive(snapshot.ids, scores, k)

    def save(self, directory: Path) -> list[Path]:
        """Write the texts (``lexical.jsonl``), settings and the index arrays."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with self._lock:
            snapshot = self._build_locked()
            written = [self._write_texts(directory / TEXTS_FILE, snapshot.ids)]
            written.append(self._write_meta(directory / META_FILE, len(snapshot.ids)))
            if snapshot.retriever is not None:
                blob = _pack(snapshot.retriever, snapshot.postings)
                written.append(self._write(directory / ARRAYS_FILE, blob))
        return written

    def load(self, directory: Path) -> None:
        """Replace the contents with the index saved in ``directory``."""
        directory = Path(directory)
        texts = _parse_texts(self._read(directory / TEXTS_FILE))
        meta = json.loads((directory / META_FILE).read_text("utf-8"))
        loaded = self._load_retriever(directory / ARRAYS_FILE, meta, len(texts))
        with self._lock:
            self._texts = texts
            # None makes the next search re-index (the saved files were built differently).
            fits = loaded is not None or not texts
            retriever, postings = loaded if loaded is not None else (None, None)
            self._built = _Snapshot(tuple(texts), retriever, postings) if fits else None

    def _build(self, texts: dict[str, str]) -> _Snapshot:
        ids = tuple(texts)
        corpus = [self.tokenize(texts[chunk_id]) for chunk_id in ids]
        retriever = self._index(corpus)
        postings = _Postings.of(corpus, retriever.vocab_dict) if retriever else None
        return _Snapshot(ids, retriever, postings)

    def _index(self, corpus: list[list[str]]) -> Any:
        """A bm25s retriever over tokenised texts; None when there is no term at all."""
        if not any(corpus):
            return None
        retriever = self._bm25s.BM25(k1=self.k1, b=self.b, method="lucene", backend="numpy")
        retriever.index(corpus, show_progress=False)
        return retriever

    def _write_texts(self, path: Path, ids: Sequence[str]) -> Path:
        """One JSON object per chunk, in index order."""
        lines = (
            json.dumps({"id": chunk_id, "text": self._texts[chunk_id]}, ensure_ascii=False) + "\n"
            for chunk_id in ids
        )
        return self._write(path, "".join(lines).encode("utf-8"))

    def _write(self, path: Path, data: bytes) -> Path:
        """Write ``data``, encrypted when there is a key ring."""
        path.write_bytes(self._keyring.encrypt(USER_DATA, data) if self._keyring else data)
        return path

    def _read(self, path: Path) -> bytes:
        """Read a file written by ``_write``; IntegrityError names a tampered file."""
        data = path.read_bytes()
        if self._keyring is None:
            return data
        try:
            return self._keyring.decrypt(USER_DATA, data)
        except IntegrityError as exc:
            raise IntegrityError(f"{path}: {exc}") from None

    def _write_meta(self, path: Path, count: int) -> Path:
        """The settings the saved index was built with."""
        meta = {
            "k1": self.k1,
            "b": self.b,
            "analyzer": self.analyzer,
            "count": count,
            "format": FORMAT,
        }
        path.write_text(json.dumps(meta), "utf-8")
        return path

    def _load_retriever(
        self, path: Path, meta: dict[str, Any], count: int
    ) -> tuple[Any, _Postings] | None:
        """The saved index when it fits our settings and the texts, else None."""
        settings = tuple(meta.get(k) for k in ("k1", "b", "analyzer", "count", "format"))
        if settings != (self.k1, self.b, self.analyzer, count, FORMAT) or not path.is_file():
            logger.info("lexical index in %s was built differently; re-indexing", path.parent)
            return None
        try:
            retriever, postings = self._unpack(self._read(path))
        except (zipfile.BadZipFile, EOFError, KeyError) as exc:
            raise ValueError(f"{path} is not a saved BM25 index ({exc})") from None
        if retriever.scores["num_docs"] != count or len(postings.lengths) != count:
            raise ValueError(f"{path} does not match {TEXTS_FILE}: rebuild the index")
        return retriever, postings

    def _unpack(self, blob: bytes) -> tuple[Any, _Postings]:
        """A bm25s retriever and the postings from the arrays ``_pack`` wrote (the retriever
        as ``BM25.load`` sets it up)."""
        with np.load(io.BytesIO(blob), allow_pickle=False) as arrays:
            params = json.loads(arrays["params"].tobytes())
            vocab = json.loads(arrays["vocab"].tobytes())
            scores = {name: arrays[name] for name in ("data", "indices", "indptr")}
            postings = _Postings(*(arrays[name] for name in _POSTINGS))
        scores["num_docs"] = params.pop("num_docs")
        retriever = self._bm25s.BM25(**params)
        retriever.vocab_dict = vocab
        retriever.unique_token_ids_set = set(vocab.values())
        retriever.scores = scores
        retriever.nonoccurrence_array = None  # only BM25L and BM25+ have one
        return retriever, postings


def _import_bm25s() -> Any:
    """The bm25s module, imported on first use (it is optional)."""
    return optional_import("bm25s", feature="the BM25 lexical index", package="bm25s", extra="bm25")


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


def _pack(retriever: Any, postings: _Postings | None) -> bytes:
    """The score arrays, vocabulary and parameters of a bm25s retriever, and the postings,
    as one .npz blob.

    One blob in memory instead of bm25s's own files, so it can be encrypted whole. Saving
    the arrays beats re-indexing the decrypted texts at load: on two cores, 5,000 chunks
    take ~1.7 s to re-index but ~15 ms to load.
    """
    if retriever.method in retriever.methods_requiring_nonoccurrence:
        raise ValueError(f"BM25 method {retriever.method!r} is not supported")
    params = {name: getattr(retriever, name) for name in _PARAMS}
    params["num_docs"] = int(retriever.scores["num_docs"])
    arrays: dict[str, np.ndarray] = {
        "data": retriever.scores["data"],
        "indices": retriever.scores["indices"],
        "indptr": retriever.scores["indptr"],
        "vocab": _json_array(retriever.vocab_dict),
        "params": _json_array(params),
    }
    if postings is not None:
        arrays.update(zip(_POSTINGS, _arrays(postings), strict=True))
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    return buffer.getvalue()


def _arrays(postings: _Postings) -> tuple[np.ndarray, ...]:
    return (postings.indptr, postings.rows, postings.counts, postings.lengths)


def _json_array(value: Any) -> np.ndarray:
    return np.frombuffer(json.dumps(value, ensure_ascii=False).encode("utf-8"), dtype=np.uint8)


def _parse_texts(data: bytes) -> dict[str, str]:
    """Chunk id -> text from the bytes of ``lexical.jsonl``, in file order."""
    texts: dict[str, str] = {}
    for line in data.decode("utf-8").split("\n"):  # not splitlines(): texts hold U+2028
        if line:
            record = json.loads(line)
            texts[str(record["id"])] = str(record["text"])
    return texts
