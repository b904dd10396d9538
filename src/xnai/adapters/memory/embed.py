"""A deterministic embedder without a model: feature hashing of words and word pairs."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"\w+")
_EMPTY = "\x00empty"  # the feature of a text without words, so its vector has norm 1


class HashingEmbedder:
    """Hashes lowercase word unigrams and bigrams into ``dim`` buckets; L2-normalised."""

    name = "hashing-unigram-bigram"

    def __init__(self, dim: int = 384, *, max_seq_length: int = 256) -> None:
        if dim < 1 or max_seq_length < 1:
            raise ValueError(f"dim and max_seq_length must be >= 1, got {dim}, {max_seq_length}")
        self.dim = dim
        self.max_seq_length = max_seq_length
        self.version = f"blake2b-1+seq{max_seq_length}"

    def count_tokens(self, text: str) -> int:
        """Number of words in ``text``."""
        return len(_WORD.findall(text))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One unit vector per text, in the input order."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature in self._features(text):
                out[row, _bucket(feature, self.dim)] += 1.0
        out /= np.linalg.norm(out, axis=1, keepdims=True).clip(min=1e-12)
        return out

    def _features(self, text: str) -> list[str]:
        """Words (truncated like a model's input) and adjacent word pairs."""
        words = _WORD.findall(text.lower())[: self.max_seq_length]
        pairs = [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]
        return words + pairs or [_EMPTY]


def _bucket(feature: str, dim: int) -> int:
    """Stable bucket of a feature (Python's hash() is salted per process)."""
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % dim
