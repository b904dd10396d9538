"""BM25 keyword search with bm25s, re-indexed lazily after changes.

With a key ring, the saved texts and the index arrays (vocabulary included) are encrypted
with the user_data key; they are decrypted into memory once, at load.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

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
_WORD = re.compile(r"\w+")
_POSSESSIVE = re.compile(r"['\u2019]s\b")


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """An immutable built index: searches use one while a rebuild makes the next."""

    ids: tuple[str, ...]
    retriever: Any  # bm25s.BM25, or None when no text has a single term


class Bm25LexicalIndex:
    """Okapi BM25 (Lucene variant) over chunk texts; defaults are Anserini's for SciFact."""

    def __init__(
        self,
        k1: float = 0.9,
        b: float = 0.4,
        *,
        stem: bool = True,
        keyring: KeyRing | None = None,
    ) -> None:
        self.k1 = k1
        self.b = b
        self._keyring = keyring
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

    def search(
        self, query: str, k: int, allowed: RowFilter | None = None
    ) -> list[tuple[str, float]]:
        """Top ``k`` (chunk id, BM25 score > 0), best first; [] for a query of no known term;
        with ``allowed``, the scores of rows the filter blocks are zeroed before ranking."""
        snapshot = self._current()
        if allowed is not None:
            allowed.check(len(snapshot.ids))
        if k <= 0 or snapshot.retriever is None:
            return []
        token_ids = snapshot.retriever.get_tokens_ids(self.tokenize(query))
        if not token_ids:
            return []
        scores = snapshot.retriever.get_scores_from_ids(token_ids)
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
                written.append(self._write(directory / ARRAYS_FILE, _pack(snapshot.retriever)))
        return written

    def load(self, directory: Path) -> None:
        """Replace the contents with the index saved in ``directory``."""
        directory = Path(directory)
        texts = _parse_texts(self._read(directory / TEXTS_FILE))
        meta = json.loads((directory / META_FILE).read_text("utf-8"))
        retriever = self._load_retriever(directory / ARRAYS_FILE, meta, len(texts))
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
        meta = {"k1": self.k1, "b": self.b, "analyzer": self.analyzer, "count": count}
        path.write_text(json.dumps(meta), "utf-8")
        return path

    def _load_retriever(self, path: Path, meta: dict[str, Any], count: int) -> Any:
        """The saved index when it fits our settings and the texts, else None."""
        settings = (meta.get("k1"), meta.get("b"), meta.get("analyzer"), meta.get("count"))
        if settings != (self.k1, self.b, self.analyzer, count) or not path.is_file():
            logger.info("lexical index in %s was built differently; re-indexing", path.parent)
            return None
        try:
            retriever = self._unpack(self._read(path))
        except (zipfile.BadZipFile, EOFError, KeyError) as exc:
            raise ValueError(f"{path} is not a saved BM25 index ({exc})") from None
        if retriever.scores["num_docs"] != count:
            raise ValueError(f"{path} does not match {TEXTS_FILE}: rebuild the index")
        return retriever

    def _unpack(self, blob: bytes) -> Any:
        """A bm25s retriever from the arrays ``_pack`` wrote (what ``BM25.load`` sets up)."""
        with np.load(io.BytesIO(blob), allow_pickle=False) as arrays:
            params = json.loads(arrays["params"].tobytes())
            vocab = json.loads(arrays["vocab"].tobytes())
            scores = {name: arrays[name] for name in ("data", "indices", "indptr")}
        scores["num_docs"] = params.pop("num_docs")
        retriever = self._bm25s.BM25(**params)
        retriever.vocab_dict = vocab
        retriever.unique_token_ids_set = set(vocab.values())
        retriever.scores = scores
        retriever.nonoccurrence_array = None  # only BM25L and BM25+ have one
        return retriever


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


def _pack(retriever: Any) -> bytes:
    """The score arrays, vocabulary and parameters of a bm25s retriever as one .npz blob.

    One blob in memory instead of bm25s's own files, so it can be encrypted whole. Saving
    the arrays beats re-indexing the decrypted texts at load: on two cores, 5,000 chunks
    take ~1.7 s to re-index but ~15 ms to load.
    """
    if retriever.method in retriever.methods_requiring_nonoccurrence:
        raise ValueError(f"BM25 method {retriever.method!r} is not supported")
    params = {name: getattr(retriever, name) for name in _PARAMS}
    params["num_docs"] = int(retriever.scores["num_docs"])
    buffer = io.BytesIO()
    np.savez(
        buffer,
        data=retriever.scores["data"],
        indices=retriever.scores["indices"],
        indptr=retriever.scores["indptr"],
        vocab=_json_array(retriever.vocab_dict),
        params=_json_array(params),
    )
    return buffer.getvalue()


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
