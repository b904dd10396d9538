"""Behaviour every Embedder adapter must share; subclass and override the `embedder` fixture."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

import numpy as np
import pytest

from xnai.domain.ports import Embedder

TEXTS = [
    "Cats sleep about sixteen hours a day.",
    "Dogs bark at strangers.",
    "",
    "The committee approved the budget after a long debate about the new library, "
    "its opening hours, the number of staff it needs and the cost of its heating. " * 3,
    "Tea",
]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors."""
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


class EmbedderContract:
    """Mixin of contract tests; a `Test...` subclass supplies `embedder`."""

    #: Whether the semantic sanity check applies (a real model, not a hashing fake).
    semantic: ClassVar[bool] = False

    @pytest.fixture
    def embedder(self) -> Embedder:
        """The adapter under test (subclasses override this fixture)."""
        pytest.fail("EmbedderContract subclasses must override the `embedder` fixture")

    def test_satisfies_the_port(self, embedder: Embedder) -> None:
        assert isinstance(embedder, Embedder)
        assert embedder.name and embedder.version
        assert embedder.dim > 0 and embedder.max_seq_length > 0

    def test_shape_dtype_and_unit_norm(self, embedder: Embedder) -> None:
        vectors = embedder.embed(TEXTS)
        assert vectors.shape == (len(TEXTS), embedder.dim)
        assert vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)

    def test_no_texts_give_an_empty_matrix(self, embedder: Embedder) -> None:
        assert embedder.embed([]).shape == (0, embedder.dim)

    def test_deterministic(self, embedder: Embedder) -> None:
        np.testing.assert_array_equal(embedder.embed(TEXTS), embedder.embed(TEXTS))

    def test_batch_equals_one_at_a_time(self, embedder: Embedder) -> None:
        batch = embedder.embed(TEXTS)
        for row, text in enumerate(TEXTS):
            single = embedder.embed([text])[0]
            assert cosine(batch[row], single) > 0.9999, text

    def test_input_order_is_kept(self, embedder: Embedder) -> None:
        forward = embedder.embed(TEXTS)
        backward = embedder.embed(TEXTS[::-1])
        np.testing.assert_allclose(forward, backward[::-1], atol=1e-5)

    def test_equal_texts_give_equal_vectors(self, embedder: Embedder) -> None:
        vectors = embedder.embed(["same words", "other words", "same words"])
        assert cosine(vectors[0], vectors[2]) > 0.9999
        assert cosine(vectors[0], vectors[1]) < 0.999

    def test_count_tokens_grows_with_text(self, embedder: Embedder) -> None:
        counts = [embedder.count_tokens(t) for t in ["", "hello", "hello world", TEXTS[3]]]
        assert counts[0] == 0
        assert counts == sorted(counts) and counts[-1] > counts[1] > 0

    def test_concurrent_single_queries_agree_with_serial_ones(self, embedder: Embedder) -> None:
        queries = [f"question number {i} about {TEXTS[i % 5][:30]}" for i in range(24)]
        serial = [embedder.embed([q]) for q in queries]
        with ThreadPoolExecutor(max_workers=6) as pool:
            parallel = list(pool.map(lambda q: embedder.embed([q]), queries))
        for got, want in zip(parallel, serial, strict=True):
            np.testing.assert_allclose(got, want, atol=1e-6)

    def test_similar_meaning_is_closer(self, embedder: Embedder) -> None:
        if not self.semantic:
            pytest.skip("a hashing embedder has no notion of meaning")
        dog, puppies, stocks = embedder.embed(
            ["a dog barks", "puppies bark loudly", "stock markets fell"]
        )
        assert cosine(dog, puppies) > cosine(dog, stocks) + 0.2
