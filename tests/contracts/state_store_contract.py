"""Behaviour every StateStore adapter must share; subclass and override the `state` fixture."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from xnai.domain.ports import StateStore

VALUE: dict[str, Any] = {"hash": "ab12", "seen": ["tls", "auth"], "n": 3, "on": True, "x": None}


class StateStoreContract:
    """Mixin of contract tests; a `Test...` subclass supplies an empty `state`."""

    @pytest.fixture
    def state(self) -> StateStore:
        """The adapter under test (subclasses override this fixture)."""
        pytest.fail("StateStoreContract subclasses must override the `state` fixture")

    def test_a_missing_key_reads_as_none(self, state: StateStore) -> None:
        assert state.get("last_run:retention") is None

    @pytest.mark.parametrize("value", [VALUE, [1, 2.5, "ä"], "2026-12-05T10:00:00+00:00", 7])
    def test_json_values_round_trip(self, state: StateStore, value: Any) -> None:
        state.set("k", value)
        assert state.get("k") == value

    def test_set_overwrites_one_key_only(self, state: StateStore) -> None:
        state.set("a", 1)
        state.set("b", 2)
        state.set("a", 3)
        assert (state.get("a"), state.get("b")) == (3, 2)

    def test_values_are_copies(self, state: StateStore) -> None:
        value = {"seen": ["tls"]}
        state.set("k", value)
        value["seen"].append("changed")
        got = state.get("k")
        got["seen"].append("changed too")
        assert state.get("k") == {"seen": ["tls"]}

    def test_a_tuple_reads_back_as_a_list(self, state: StateStore) -> None:
        state.set("k", (1, 2))
        assert state.get("k") == [1, 2]

    def test_a_value_json_cannot_hold_is_refused(self, state: StateStore) -> None:
        state.set("k", "kept")
        with pytest.raises(TypeError):
            state.set("k", object())
        assert state.get("k") == "kept"

    def test_concurrent_writers_keep_every_key(self, state: StateStore) -> None:
        def write(i: int) -> None:
            state.set(f"last_run:job{i}", i)

        threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [state.get(f"last_run:job{i}") for i in range(8)] == list(range(8))
