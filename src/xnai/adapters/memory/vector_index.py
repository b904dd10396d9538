"""Brute-force inner-product search in numpy: the reference for exact search."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xnai.adapters.index.vectors import as_matrix, as_query, check_new_ids, read_ids, write_ids
from xnai.domain.access import RowFilter
from xnai.domain.ports import Vectors

VECTORS_FILE = "numpy_vectors.npy"
IDS_FILE = "numpy_vector_ids.json"


@dataclass(frozen=True, slots=True)
class _State:
    """An immutable snapshot: searches read one while writers build the next."""

    ids: tuple[str, ...]
    matrix: np.ndarray
    positions: dict[str, int] = field(default_factory=dict)


class NumpyVectorIndex:
    """Every vector in one float32 matrix; search is a matrix-vector product."""

    def __init__(self, dim: int) -> None:
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        self.dim = dim
        self._state = _State((), np.zeros((0, dim), dtype=np.float32))
        self._write_lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._state.ids)

    def ids(self) -> list[str]:
        """Chunk ids in index order."""
        return list(self._state.ids)

    def add(self, ids: Sequence[str], vectors: Vectors) -> None:
        """Append vectors under new chunk ids; ValueError on a duplicate id or bad shape."""
        new_ids = list(ids)
        matrix = as_matrix(vectors, self.dim, len(new_ids))
        with self._write_lock:
            state = self._state
            check_new_ids(new_ids, state.positions)
            self._state = _make_state(
                (*state.ids, *new_ids), np.concatenate([state.matrix, matrix])
            )

    def remove(self, ids: set[str]) -> None:
        """Drop the vectors of these chunk ids (unknown ids are ignored)."""
        with self._write_lock:
            state = self._state
            keep = np.array([chunk_id not in ids for chunk_id in state.ids], dtype=bool)
            if keep.all():
                return
            kept_ids = tuple(i for i, kept in zip(state.ids, keep, strict=True) if kept)
            self._state = _make_state(kept_ids, state.matrix[keep])

    def search(
        self, vector: Vectors, k: int, allowed: RowFilter | None = None
    ) -> list[tuple[str, float]]:
        """Top ``k`` (chunk id, inner product), best first; ties by index order; with
        ``allowed``, rows the filter blocks are never ranked."""
        query = as_query(vector, self.dim)[0]
        state = self._state
        if allowed is not None:
            allowed.check(len(state.ids))
        k = min(k, len(state.ids) if allowed is None else allowed.count)
        if k <= 0:
            return []
        # einsum stays on this thread; BLAS's worker threads spin and oversubscribe the
        # CPUs when many requests search at once.
        scores = np.einsum("ij,j->i", state.matrix, query)
        if allowed is not None:
            scores = np.where(allowed.mask, scores, -np.inf)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.lexsort((top, -scores[top]))]
        return [(state.ids[row], float(scores[row])) for row in top]

    def save(self, directory: Path) -> list[Path]:
        """Write ``numpy_vectors.npy`` and ``numpy_vector_ids.json`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        vectors_path, ids_path = directory / VECTORS_FILE, directory / IDS_FILE
        state = self._state
        with vectors_path.open("wb") as out:
            np.save(out, state.matrix, allow_pickle=False)
        write_ids(ids_path, self.dim, state.ids)
        return [vectors_path, ids_path]

    def load(self, directory: Path) -> None:
        """Replace the contents with the index saved in ``directory``."""
        directory = Path(directory)
        ids = read_ids(directory / IDS_FILE, self.dim)
        matrix = np.load(directory / VECTORS_FILE, allow_pickle=False)
        if matrix.shape != (len(ids), self.dim) or matrix.dtype != np.float32:
            raise ValueError(
                f"{directory / VECTORS_FILE} holds {matrix.dtype} {matrix.shape}, "
                f"expected float32 ({len(ids)}, {self.dim}): rebuild the index"
            )
        with self._write_lock:
            self._state = _make_state(tuple(ids), matrix)


def _make_state(ids: tuple[str, ...], matrix: np.ndarray) -> _State:
    """A snapshot with its id -> row map."""
    positions = {chunk_id: row for row, chunk_id in enumerate(ids)}
    return _State(ids, np.ascontiguousarray(matrix, dtype=np.float32), positions)
