"""Behaviour every AnchorStore adapter must share; subclass and override `store`."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from xnai.domain.audit import AnchorStore, AuditAnchor


class AnchorStoreContract:
    """Mixin of contract tests; a `Test...` subclass supplies `store`, an empty store, and
    `reopen(store)`, the same storage seen by a new adapter object."""

    @pytest.fixture
    def store(self) -> AnchorStore:
        """An empty store (subclasses override this fixture)."""
        pytest.fail("AnchorStoreContract subclasses must override the `store` fixture")

    def reopen(self, store: AnchorStore) -> AnchorStore:
        """The same storage through a fresh adapter (in memory: the same object)."""
        return store

    def test_satisfies_the_port(self, store: AnchorStore) -> None:
        assert isinstance(store, AnchorStore)

    def test_an_empty_store_holds_no_anchor(self, store: AnchorStore) -> None:
        assert store.load() is None

    def test_the_last_saved_anchor_is_loaded(self, store: AnchorStore) -> None:
        store.save(AuditAnchor(0, "0" * 64))
        store.save(AuditAnchor(7, "a" * 64))
        assert store.load() == AuditAnchor(7, "a" * 64)
        store.save(AuditAnchor(3, "b" * 64))  # a trim or a rewrite may move it anywhere
        assert self.reopen(store).load() == AuditAnchor(3, "b" * 64)

    def test_large_sequence_numbers_survive(self, store: AnchorStore) -> None:
        store.save(AuditAnchor(2**40, "c" * 64))
        assert self.reopen(store).load() == AuditAnchor(2**40, "c" * 64)

    def test_parallel_saves_leave_one_of_them(self, store: AnchorStore) -> None:
        anchors = [AuditAnchor(i, f"{i:064x}") for i in range(1, 21)]
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(store.save, anchors))
        assert store.load() in anchors
