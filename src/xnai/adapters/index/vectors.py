"""Checks and id files shared by the vector indexes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from xnai.domain.ports import Vectors


def as_matrix(vectors: Vectors, dim: int, count: int) -> np.ndarray:
    """``vectors`` as a C-contiguous float32 (count, dim) matrix of finite values."""
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape != (count, dim):
        raise ValueError(f"expected vectors of shape ({count}, {dim}), got {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise ValueError("vectors contain NaN or infinite values")
    return matrix


def as_query(vector: Vectors, dim: int) -> np.ndarray:
    """One query vector, shape (dim,) or (1, dim), as a (1, dim) float32 matrix."""
    query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
    if query.shape[1] != dim:
        raise ValueError(f"expected a query vector of dim {dim}, got shape {np.shape(vector)}")
    return query


def check_new_ids(ids: Sequence[str], existing: dict[str, int]) -> None:
    """ValueError when an id repeats within ``ids`` or is already indexed."""
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate chunk ids in one add")
    taken = [chunk_id for chunk_id in ids if chunk_id in existing]
    if taken:
        raise ValueError(f"chunk ids already indexed: {taken[:5]}")


def write_ids(path: Path, dim: int, ids: Sequence[str]) -> None:
    """Write the id list with the dimension it belongs to."""
    path.write_bytes(ids_bytes(dim, ids))


def ids_bytes(dim: int, ids: Sequence[str]) -> bytes:
    """The id list with the dimension it belongs to, as JSON bytes."""
    return json.dumps({"dim": dim, "count": len(ids), "ids": list(ids)}).encode("utf-8")


def read_ids(path: Path, dim: int) -> list[str]:
    """Read an id list written by ``write_ids``; ValueError when it does not fit."""
    return parse_ids(path.read_bytes(), dim, path)


def parse_ids(data: bytes, dim: int, path: Path) -> list[str]:
    """The ids in ``data`` (from ``ids_bytes``); ValueError naming ``path`` when they do not
    fit."""
    try:
        payload = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(f"{path} is not an id list: rebuild the index") from None
    if not isinstance(payload, dict):
        raise ValueError(f"{path} is not an id list: rebuild the index")
    ids = payload.get("ids")
    if payload.get("dim") != dim or not isinstance(ids, list) or len(ids) != payload.get("count"):
        raise ValueError(f"{path} does not describe a dim-{dim} index: rebuild the index")
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path} lists a chunk id twice: rebuild the index")
    return [str(chunk_id) for chunk_id in ids]
