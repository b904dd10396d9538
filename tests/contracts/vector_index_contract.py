"""Behaviour every VectorIndex adapter must share; subclass and override `make_index`."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from xnai.domain.access import RowFilter
from xnai.domain.ports import VectorIndex

DIM = 16
MakeIndex = Callable[[int], VectorIndex]


def unit_vectors(count: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    """Random float32 rows of norm 1."""
    rows = np.random.default_rng(seed).standard_normal((count, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def brute_force(ids: list[str], matrix: np.ndarray, query: np.ndarray, k: int) -> list[str]:
    """Ids of the ``k`` best inner products, computed directly."""
    order = np.argsort(-(matrix @ query), kind="stable")[:k]
    return [ids[row] for row in order]


class VectorIndexContract:
    """Mixin of contract tests; a `Test...` subclass supplies `make_index(dim)`."""

    @pytest.fixture
    def make_index(self) -> MakeIndex:
        """Factory of empty indexes under test (subclasses override this fixture)."""
        pytest.fail("VectorIndexContract subclasses must override the `make_index` fixture")

    @pytest.fixture
    def filled(self, make_index: MakeIndex) -> tuple[VectorIndex, list[str], np.ndarray]:
        """An index of 50 random unit vectors, with its ids and matrix."""
        index = make_index(DIM)
        ids = [f"c{i}" for i in range(50)]
        matrix = unit_vectors(50)
        index.add(ids, matrix)
        return index, ids, matrix

    def test_satisfies_the_port(self, make_index: MakeIndex) -> None:
        assert isinstance(make_index(DIM), VectorIndex)

    def test_empty_index_finds_nothing(self, make_index: MakeIndex) -> None:
        index = make_index(DIM)
        assert len(index) == 0 and index.ids() == []
        assert index.search(unit_vectors(1)[0], 5) == []

    def test_a_stored_vector_is_its_own_best_match(self, filled: tuple) -> None:
        index, ids, matrix = filled
        hits = index.search(matrix[7], 3)
        assert hits[0][0] == ids[7]
        assert hits[0][1] == pytest.approx(1.0, abs=1e-5)
        assert all(isinstance(i, str) and isinstance(s, float) for i, s in hits)

    def test_results_match_brute_force_best_first(self, filled: tuple) -> None:
        index, ids, matrix = filled
        for query in unit_vectors(10, seed=1):
            hits = index.search(query, 10)
            assert [i for i, _ in hits] == brute_force(ids, matrix, query, 10)
            scores = [s for _, s in hits]
            assert scores == sorted(scores, reverse=True)
            expected = np.sort(matrix @ query)[::-1][:10]
            np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-5)

    def test_k_is_clamped_to_the_size(self, filled: tuple) -> None:
        index, ids, matrix = filled
        assert len(index.search(matrix[0], 500)) == len(ids)
        assert index.search(matrix[0], 0) == []

    def test_query_may_be_a_row_matrix(self, filled: tuple) -> None:
        index, _, matrix = filled
        assert index.search(matrix[3][None, :], 4) == index.search(matrix[3], 4)

    def test_ids_keep_insertion_order(self, filled: tuple) -> None:
        index, ids, _ = filled
        index.add(["z", "a"], unit_vectors(2, seed=2))
        assert index.ids() == [*ids, "z", "a"]
        assert len(index) == len(ids) + 2

    def test_duplicate_ids_are_rejected(self, filled: tuple) -> None:
        index, ids, _ = filled
        with pytest.raises(ValueError):
            index.add([ids[0]], unit_vectors(1, seed=3))
        with pytest.raises(ValueError):
            index.add(["new", "new"], unit_vectors(2, seed=3))
        assert index.ids() == ids

    def test_bad_shapes_are_rejected(self, make_index: MakeIndex) -> None:
        index = make_index(DIM)
        with pytest.raises(ValueError):
            index.add(["a", "b"], unit_vectors(3))
        with pytest.raises(ValueError):
            index.add(["a"], unit_vectors(1, dim=DIM + 1))
        assert len(index) == 0

    def test_removed_ids_are_never_returned(self, filled: tuple) -> None:
        index, ids, matrix = filled
        gone = set(ids[::3]) | {"unknown"}
        index.remove(gone)
        kept = [i for i in ids if i not in gone]
        assert index.ids() == kept and len(index) == len(kept)
        rows = [ids.index(i) for i in kept]
        for query in matrix[:10]:
            hits = index.search(query, len(ids))
            assert not {i for i, _ in hits} & gone
            assert [i for i, _ in hits] == brute_force(kept, matrix[rows], query, len(ids))

    def test_remove_everything_then_add_again(self, filled: tuple) -> None:
        index, ids, matrix = filled
        index.remove(set(ids))
        assert len(index) == 0 and index.search(matrix[0], 3) == []
        index.add([ids[0]], matrix[:1])
        assert index.search(matrix[0], 3)[0][0] == ids[0]

    def test_remove_of_unknown_ids_changes_nothing(self, filled: tuple) -> None:
        index, ids, _ = filled
        index.remove({"nope"})
        index.remove(set())
        assert index.ids() == ids

    def test_save_load_round_trip(
        self, filled: tuple, make_index: MakeIndex, tmp_path: Path
    ) -> None:
        index, ids, matrix = filled
        index.remove({ids[1], ids[2]})
        written = index.save(tmp_path / "gen")
        assert written and all(p.is_file() and p.parent == tmp_path / "gen" for p in written)
        other = make_index(DIM)
        other.add(["stale"], unit_vectors(1, seed=9))
        other.load(tmp_path / "gen")
        assert other.ids() == index.ids()
        for query in unit_vectors(5, seed=4):
            assert other.search(query, 8) == index.search(query, 8)

    def test_empty_index_round_trips(self, make_index: MakeIndex, tmp_path: Path) -> None:
        make_index(DIM).save(tmp_path)
        loaded = make_index(DIM)
        loaded.load(tmp_path)
        assert len(loaded) == 0 and loaded.search(unit_vectors(1)[0], 3) == []

    def test_load_of_another_dimension_fails(
        self, filled: tuple, make_index: MakeIndex, tmp_path: Path
    ) -> None:
        index, _, _ = filled
        index.save(tmp_path)
        with pytest.raises(ValueError):
            make_index(DIM * 2).load(tmp_path)

    def test_concurrent_searches_agree_with_serial_ones(self, filled: tuple) -> None:
        index, _, _ = filled
        queries = list(unit_vectors(64, seed=5))
        serial = [index.search(q, 5) for q in queries]
        with ThreadPoolExecutor(max_workers=8) as pool:
            parallel = list(pool.map(lambda q: index.search(q, 5), queries))
        assert parallel == serial

    def test_a_row_filter_ranks_only_allowed_rows(self, filled: tuple) -> None:
        index, ids, matrix = filled
        allowed = set(ids[1::4])
        rows = [ids.index(i) for i in ids if i in allowed]
        kept = [ids[r] for r in rows]
        only = RowFilter.of(index.ids(), allowed)
        for query in unit_vectors(8, seed=6):
            hits = index.search(query, 5, only)
            # Filtering happens before ranking: a narrow scope still fills top k.
            assert [i for i, _ in hits] == brute_force(kept, matrix[rows], query, 5)
        assert index.search(matrix[0], 10, only)[0][0] != ids[0]  # row 0 is blocked
        assert index.search(matrix[1], 1, only)[0][0] == ids[1]

    def test_k_is_clamped_to_the_allowed_rows(self, filled: tuple) -> None:
        index, ids, matrix = filled
        only = RowFilter.of(index.ids(), {ids[3], ids[40]})
        assert {i for i, _ in index.search(matrix[0], 50, only)} == {ids[3], ids[40]}
        assert index.search(matrix[0], 50, RowFilter.of(index.ids(), set())) == []

    def test_an_unrestricted_filter_changes_nothing(self, filled: tuple) -> None:
        index, ids, matrix = filled
        everything = RowFilter.of(index.ids(), set(ids))
        for query in matrix[:5]:
            assert index.search(query, 7, everything) == index.search(query, 7)

    def test_a_filter_of_another_length_is_refused(self, filled: tuple) -> None:
        index, ids, matrix = filled
        with pytest.raises(ValueError):
            index.search(matrix[0], 3, RowFilter.of(ids[:-1], set(ids)))

    def test_one_filter_serves_concurrent_searches(self, filled: tuple) -> None:
        index, ids, _ = filled
        only = RowFilter.of(index.ids(), set(ids[::2]))
        queries = list(unit_vectors(32, seed=7))
        serial = [index.search(q, 4, only) for q in queries]
        with ThreadPoolExecutor(max_workers=8) as pool:
            parallel = list(pool.map(lambda q: index.search(q, 4, only), queries))
        assert parallel == serial
        assert all(i in set(ids[::2]) for hits in serial for i, _ in hits)
