"""Exact inner-product search with FAISS (IndexFlatIP).

With a key ring, the index is serialised to bytes and both files are encrypted with the
user_data key (embeddings can give away text by inversion); they are decrypted into memory
once, at load.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from xnai.adapters.index.vectors import as_matrix, as_query, check_new_ids, ids_bytes, parse_ids
from xnai.adapters.optional import optional_import
from xnai.domain.access import RowFilter
from xnai.domain.errors import IntegrityError
from xnai.domain.keys import USER_DATA
from xnai.domain.ports import KeyRing, Vectors

VECTORS_FILE = "vectors.faiss"
IDS_FILE = "vector_ids.json"
ENCRYPTED_FILES = (VECTORS_FILE, IDS_FILE)
# How the plain files begin: generations written before vectors were encrypted (or with
# encryption off) are read as they are.
_PLAIN_STARTS = (b"IxF", b"{")


class FaissVectorIndex:
    """Chunk vectors in a flat FAISS index; chunk ids are kept aligned with the rows."""

    def __init__(
        self, dim: int, *, search_threads: int | None = 1, keyring: KeyRing | None = None
    ) -> None:
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        self.dim = dim
        self._keyring = keyring
        # One OpenMP thread per search: many concurrent searches on 2 CPUs would
        # otherwise oversubscribe them. None leaves FAISS's default.
        self.search_threads = search_threads
        self._faiss = _import_faiss()
        self._index = self._faiss.IndexFlatIP(dim)
        self._ids: list[str] = []
        self._positions: dict[str, int] = {}
        self._lock = ReadWriteLock()

    def __len__(self) -> int:
        return len(self._ids)

    def ids(self) -> list[str]:
        """Chunk ids in index order."""
        with self._lock.read():
            return list(self._ids)

    def add(self, ids: Sequence[str], vectors: Vectors) -> None:
        """Append vectors under new chunk ids; ValueError on a duplicate id or bad shape."""
        new_ids = list(ids)
        matrix = as_matrix(vectors, self.dim, len(new_ids))
        with self._lock.write():
            check_new_ids(new_ids, self._positions)
            self._index.add(matrix)
            for chunk_id in new_ids:
                self._positions[chunk_id] = len(self._ids)
                self._ids.append(chunk_id)

    def remove(self, ids: set[str]) -> None:
        """Drop the vectors of these chunk ids (unknown ids are ignored)."""
        with self._lock.write():
            doomed = [self._positions[i] for i in ids if i in self._positions]
            if not doomed:
                return
            removed = self._index.remove_ids(np.asarray(doomed, dtype=np.int64))
            # IndexFlat.remove_ids compacts the kept rows in their order, so filtering the
            # id list the same way keeps ids and rows aligned.
            self._ids = [i for i in self._ids if i not in ids]
            self._positions = {chunk_id: row for row, chunk_id in enumerate(self._ids)}
            if removed != len(doomed) or self._index.ntotal != len(self._ids):
                raise RuntimeError("FAISS removed a different number of vectors than asked")

    def search(
        self, vector: Vectors, k: int, allowed: RowFilter | None = None
    ) -> list[tuple[str, float]]:
        """Top ``k`` (chunk id, inner product), best first; with ``allowed``, FAISS skips the
        rows the filter blocks while it ranks (an ID selector over the filter's bitmap)."""
        query = as_query(vector, self.dim)
        with self._lock.read():
            if allowed is not None:
                allowed.check(len(self._ids))
            k = min(k, len(self._ids) if allowed is None else allowed.count)
            if k <= 0:
                return []
            if self.search_threads is not None:
                # The OpenMP thread count is per calling thread, so set it here, not once.
                self._faiss.omp_set_num_threads(self.search_threads)
            if allowed is None:
                scores, rows = self._index.search(query, k)
            else:
                params = allowed.memo("faiss", lambda: _selector_params(self._faiss, allowed))
                scores, rows = self._index.search(query, k, params=params[0])
            return [
                (self._ids[row], float(score))
                for row, score in zip(rows[0], scores[0], strict=True)
                if row >= 0
            ]

    def save(self, directory: Path) -> list[Path]:
        """Write ``vectors.faiss`` and ``vector_ids.json`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        vectors_path, ids_path = directory / VECTORS_FILE, directory / IDS_FILE
        with self._lock.read():
            blob = self._faiss.serialize_index(self._index).tobytes()
            ids = ids_bytes(self.dim, self._ids)
        self._write(vectors_path, blob)
        self._write(ids_path, ids)
        return [vectors_path, ids_path]

    def load(self, directory: Path) -> None:
        """Replace the contents with the index saved in ``directory``; ValueError or
        IntegrityError naming the file when it cannot be read."""
        directory = Path(directory)
        ids = parse_ids(self._read(directory / IDS_FILE), self.dim, directory / IDS_FILE)
        index = self._deserialize(directory / VECTORS_FILE)
        if index.d != self.dim or index.ntotal != len(ids):
            raise ValueError(
                f"{directory / VECTORS_FILE} holds {index.ntotal} vectors of dim {index.d}, "
                f"expected {len(ids)} of dim {self.dim}: rebuild the index"
            )
        if index.metric_type != self._faiss.METRIC_INNER_PRODUCT:
            raise ValueError(f"{directory / VECTORS_FILE} is not an inner-product index")
        with self._lock.write():
            self._index = index
            self._ids = ids
            self._positions = {chunk_id: row for row, chunk_id in enumerate(ids)}

    def _deserialize(self, path: Path) -> Any:
        blob = np.frombuffer(self._read(path), dtype=np.uint8)
        try:
            return self._faiss.deserialize_index(blob)
        except RuntimeError as exc:  # FAISS reports a truncated or garbled file this way
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
            raise ValueError(f"{path} is not a FAISS index ({first})") from None

    def _write(self, path: Path, data: bytes) -> None:
        """Write ``data``, encrypted when there is a key ring."""
        path.write_bytes(self._keyring.encrypt(USER_DATA, data) if self._keyring else data)

    def _read(self, path: Path) -> bytes:
        """Read a file written by ``_write``; IntegrityError names a tampered file."""
        data = path.read_bytes()
        if self._keyring is None or data.startswith(_PLAIN_STARTS):
            return data
        try:
            return self._keyring.decrypt(USER_DATA, data)
        except IntegrityError as exc:
            raise IntegrityError(f"{path}: {exc}") from None


class ReadWriteLock:
    """Many readers at once or one writer; a waiting writer holds back new readers."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        """Hold the lock shared."""
        with self._cond:
            self._cond.wait_for(lambda: not self._writing and not self._writers_waiting)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        """Hold the lock exclusively."""
        with self._cond:
            self._writers_waiting += 1
            self._cond.wait_for(lambda: not self._writing and not self._readers)
            self._writers_waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


def _selector_params(faiss: Any, allowed: RowFilter) -> tuple[Any, ...]:
    """FAISS search parameters restricted to the filter's rows, with the objects they point
    into (the bitmap must outlive every search that uses it)."""
    bitmap = np.packbits(np.asarray(allowed.mask, dtype=np.bool_), bitorder="little")
    selector = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bitmap))
    return (faiss.SearchParameters(sel=selector), selector, bitmap)


def _import_faiss() -> Any:
    """The faiss module, imported on first use (it is heavy and optional)."""
    return optional_import(
        "faiss", feature="the FAISS vector index", package="faiss-cpu", extra="faiss"
    )
