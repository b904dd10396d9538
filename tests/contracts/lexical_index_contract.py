"""Behaviour every LexicalIndex adapter must share; subclass and override `make_index`."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from xnai.domain.access import RowFilter
from xnai.domain.ports import LexicalIndex

MakeIndex = Callable[[], LexicalIndex]
CORPUS = {
    "cats": "Cats sleep about sixteen hours a day and hunt at dusk.",
    "dogs": "Dogs bark at strangers and love long walks in the park.",
    "birds": "Birds migrate south in winter; some birds fly thousands of kilometres.",
    "fish": "Fish breathe through gills and live in rivers, lakes and the sea.",
    "tea": "Green tea is brewed at eighty degrees for two minutes.",
    "empty": "",
}


class LexicalIndexContract:
    """Mixin of contract tests; a `Test...` subclass supplies `make_index()`."""

    @pytest.fixture
    def make_index(self) -> MakeIndex:
        """Factory of empty indexes under test (subclasses override this fixture)."""
        pytest.fail("LexicalIndexContract subclasses must override the `make_index` fixture")

    @pytest.fixture
    def filled(self, make_index: MakeIndex) -> LexicalIndex:
        """An index of the small animal-and-tea corpus."""
        index = make_index()
        index.add(list(CORPUS), list(CORPUS.values()))
        return index

    def test_satisfies_the_port(self, make_index: MakeIndex) -> None:
        assert isinstance(make_index(), LexicalIndex)

    def test_empty_index_finds_nothing(self, make_index: MakeIndex) -> None:
        index = make_index()
        assert len(index) == 0 and index.ids() == []
        assert index.search("cats", 5) == []

    def test_best_match_first_with_positive_scores(self, filled: LexicalIndex) -> None:
        hits = filled.search("How many hours do cats sleep?", 3)
        assert hits[0][0] == "cats"
        scores = [score for _, score in hits]
        assert all(isinstance(s, float) and s > 0 for s in scores)
        assert scores == sorted(scores, reverse=True)

    def test_only_matching_chunks_are_returned(self, filled: LexicalIndex) -> None:
        assert [i for i, _ in filled.search("gills", 10)] == ["fish"]

    def test_k_limits_the_hits(self, filled: LexicalIndex) -> None:
        query = "cats dogs birds fish tea"
        assert len(filled.search(query, 2)) == 2
        assert len(filled.search(query, 100)) == 5
        assert filled.search(query, 0) == []

    def test_matching_ignores_case(self, filled: LexicalIndex) -> None:
        assert filled.search("GREEN TEA", 1)[0][0] == "tea"

    @pytest.mark.parametrize("query", ["", "the and of", "zyzzyva quuxbar", "!!! ???"])
    def test_no_known_term_finds_nothing(self, filled: LexicalIndex, query: str) -> None:
        assert filled.search(query, 5) == []

    def test_ids_keep_insertion_order(self, filled: LexicalIndex) -> None:
        assert filled.ids() == list(CORPUS) and len(filled) == len(CORPUS)

    def test_duplicate_ids_are_rejected(self, filled: LexicalIndex) -> None:
        with pytest.raises(ValueError):
            filled.add(["cats"], ["Cats again."])
        with pytest.raises(ValueError):
            filled.add(["x", "x"], ["one", "two"])
        assert filled.ids() == list(CORPUS)

    def test_removed_ids_are_never_returned(self, filled: LexicalIndex) -> None:
        filled.search("birds", 5)
        filled.remove({"birds", "dogs", "unknown"})
        assert filled.ids() == [i for i in CORPUS if i not in {"birds", "dogs"}]
        assert filled.search("birds migrate", 5) == []
        found = {i for i, _ in filled.search("cats dogs birds fish tea", 10)}
        assert found == {"cats", "fish", "tea"}

    def test_added_chunks_are_found_after_a_search(self, filled: LexicalIndex) -> None:
        assert filled.search("volcano", 5) == []
        filled.add(["volcano"], ["A volcano erupts lava and ash."])
        assert filled.search("volcano", 5)[0][0] == "volcano"

    def test_remove_everything(self, filled: LexicalIndex) -> None:
        filled.remove(set(CORPUS))
        assert len(filled) == 0 and filled.search("cats", 5) == []

    def test_save_load_round_trip(
        self, filled: LexicalIndex, make_index: MakeIndex, tmp_path: Path
    ) -> None:
        filled.remove({"dogs"})
        written = filled.save(tmp_path / "gen")
        assert written and all(p.is_file() for p in written)
        assert all(tmp_path / "gen" in p.parents for p in written)
        other = make_index()
        other.add(["stale"], ["stale text about cats"])
        other.load(tmp_path / "gen")
        assert other.ids() == filled.ids()
        for query in ["cats sleep", "birds fly south", "tea", "dogs"]:
            assert other.search(query, 5) == filled.search(query, 5)

    def test_loaded_index_accepts_changes(
        self, filled: LexicalIndex, make_index: MakeIndex, tmp_path: Path
    ) -> None:
        filled.save(tmp_path)
        other = make_index()
        other.load(tmp_path)
        other.remove({"cats"})
        other.add(["lions"], ["Lions sleep in the sun."])
        assert [i for i, _ in other.search("sleep", 5)] == ["lions"]

    def test_empty_index_round_trips(self, make_index: MakeIndex, tmp_path: Path) -> None:
        make_index().save(tmp_path)
        loaded = make_index()
        loaded.load(tmp_path)
        assert len(loaded) == 0 and loaded.search("cats", 3) == []

    def test_concurrent_searches_agree_with_serial_ones(self, filled: LexicalIndex) -> None:
        queries = ["cats", "dogs bark", "birds", "tea minutes", "rivers sea"] * 10
        filled.add(["late"], ["A late addition about cats and tea."])  # first search rebuilds
        with ThreadPoolExecutor(max_workers=8) as pool:
            parallel = list(pool.map(lambda q: filled.search(q, 3), queries))
        assert parallel == [filled.search(q, 3) for q in queries]

    def test_a_row_filter_ranks_only_allowed_rows(self, filled: LexicalIndex) -> None:
        only = RowFilter.of(filled.ids(), {"dogs", "fish", "tea"})
        assert filled.search("cats sleep hours", 5, only) == []
        hits = filled.search("cats dogs birds fish tea", 2, only)
        assert len(hits) == 2 and {i for i, _ in hits} <= {"dogs", "fish", "tea"}
        found = {i for i, _ in filled.search("cats dogs birds fish tea", 10, only)}
        assert found == {"dogs", "fish", "tea"}

    def test_filtered_scores_are_those_of_an_index_of_the_allowed_rows_only(
        self, filled: LexicalIndex, make_index: MakeIndex
    ) -> None:
        # Statistics (document frequencies, average length) come from the allowed rows, so
        # a score says nothing about the rows a reader may not see.
        allowed = {"dogs", "fish", "tea"}
        alone = make_index()
        alone.add(sorted(allowed), [CORPUS[i] for i in sorted(allowed)])
        only = RowFilter.of(filled.ids(), allowed)
        for query in ("gills", "dogs bark park", "tea sea birds cats", "live in the park"):
            got, want = filled.search(query, 5, only), alone.search(query, 5)
            assert [i for i, _ in got] == [i for i, _ in want]
            assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-5)

    def test_filtered_scores_do_not_change_when_hidden_rows_are_added(
        self, filled: LexicalIndex
    ) -> None:
        allowed = {"dogs", "fish", "tea"}
        before = filled.search("dogs fish tea gills", 5, RowFilter.of(filled.ids(), allowed))
        filled.add(["hidden"], ["Fish, fish and more fish: gills, gills, tea and dogs. " * 20])
        after = filled.search("dogs fish tea gills", 5, RowFilter.of(filled.ids(), allowed))
        assert [i for i, _ in after] == [i for i, _ in before]
        assert [s for _, s in after] == pytest.approx([s for _, s in before], rel=1e-5)

    def test_an_empty_filter_finds_nothing(self, filled: LexicalIndex) -> None:
        assert filled.search("cats dogs", 5, RowFilter.of(filled.ids(), set())) == []

    def test_a_filter_of_another_length_is_refused(self, filled: LexicalIndex) -> None:
        with pytest.raises(ValueError):
            filled.search("cats", 3, RowFilter.of(["cats"], {"cats"}))
