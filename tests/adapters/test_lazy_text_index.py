"""LazyTextIndex: texts in index order, built once per change."""

from __future__ import annotations

import pytest

from xnai.adapters.index.texts import LazyTextIndex


class CountingIndex(LazyTextIndex[tuple[str, ...]]):
    """Builds the tuple of ids and counts the builds."""

    def __init__(self) -> None:
        super().__init__()
        self.builds = 0

    def _build(self, texts: dict[str, str]) -> tuple[str, ...]:
        self.builds += 1
        return tuple(texts)

    def built(self) -> tuple[str, ...]:
        return self._current()


def test_builds_once_until_a_change() -> None:
    index = CountingIndex()
    index.add(["b", "a"], ["two", "one"])
    assert index.built() == ("b", "a") == tuple(index.ids())
    assert index.built() == ("b", "a")
    assert index.builds == 1
    index.remove({"b", "unknown"})
    assert index.built() == ("a",)
    assert index.builds == 2
    index.remove({"unknown"})
    index.built()
    assert (index.builds, len(index)) == (2, 1)


@pytest.mark.parametrize(
    ("ids", "texts", "message"),
    [
        (["a"], ["one", "two"], "1 ids for 2 texts"),
        (["a", "a"], ["one", "two"], "duplicate chunk ids in one add"),
        (["old"], ["again"], "already indexed"),
    ],
)
def test_add_refuses_bad_ids_and_changes_nothing(
    ids: list[str], texts: list[str], message: str
) -> None:
    index = CountingIndex()
    index.add(["old"], ["text"])
    index.built()
    with pytest.raises(ValueError, match=message):
        index.add(ids, texts)
    assert (index.ids(), index.built(), index.builds) == (["old"], ("old",), 1)
