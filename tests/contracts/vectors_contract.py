"""What every Vectors value must offer (the rows an embedder hands to a vector index);
subclass and override the `vectors` fixture."""

from __future__ import annotations

import numpy as np
import pytest

from xnai.domain.ports import Vectors


class VectorsContract:
    """Mixin of contract tests; a `Test...` subclass supplies `vectors`, at least two rows."""

    @pytest.fixture
    def vectors(self) -> Vectors:
        """The value under test (subclasses override this fixture)."""
        pytest.fail("VectorsContract subclasses must override the `vectors` fixture")

    def test_shape_is_rows_by_dimension(self, vectors: Vectors) -> None:
        assert len(vectors.shape) == 2
        assert len(vectors) == vectors.shape[0] >= 2 and vectors.shape[1] > 0

    def test_rows_index_in_order(self, vectors: Vectors) -> None:
        rows = [np.asarray(vectors[i]) for i in range(len(vectors))]
        assert all(row.shape == (vectors.shape[1],) for row in rows)
        np.testing.assert_array_equal(np.stack(rows), np.asarray(vectors))

    def test_reads_as_a_float32_array(self, vectors: Vectors) -> None:
        array = np.asarray(vectors)
        assert array.dtype == np.float32 and array.shape == vectors.shape
        assert np.isfinite(array).all()

    def test_a_slice_keeps_its_rows(self, vectors: Vectors) -> None:
        head = vectors[:1]
        assert head.shape == (1, vectors.shape[1])
        np.testing.assert_array_equal(np.asarray(head)[0], np.asarray(vectors[0]))
