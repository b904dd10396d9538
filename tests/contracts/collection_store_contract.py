"""Behaviour every CollectionStore adapter must share; subclass and override `store`."""

from __future__ import annotations

import pytest

from xnai.domain.access import Collection, CollectionStore
from xnai.domain.errors import ConflictError, NotFoundError

PRIVATE = Collection(
    "alice-private",
    "Alice's notes",
    readable_roles=(),
    readable_users=("alice", "u-42"),
    writable_roles=(),
    writable_users=("alice",),
)


class CollectionStoreContract:
    """Mixin of contract tests; a `Test...` subclass supplies the `store` fixture (empty of
    everything but what the adapter seeds)."""

    @pytest.fixture
    def store(self) -> CollectionStore:
        """The store under test (subclasses override this fixture)."""
        pytest.fail("CollectionStoreContract subclasses must override the `store` fixture")

    def test_satisfies_the_port(self, store: CollectionStore) -> None:
        assert isinstance(store, CollectionStore)

    def test_create_then_get_returns_the_same_collection(self, store: CollectionStore) -> None:
        store.create(PRIVATE)
        assert store.get("alice-private") == PRIVATE
        assert store.get("nobody") is None

    def test_list_is_by_name(self, store: CollectionStore) -> None:
        before = {c.name for c in store.list()}
        store.create(Collection("zeta"))
        store.create(Collection("alpha", readable_roles=("viewer",)))
        names = [c.name for c in store.list()]
        assert names == sorted(names) and {"zeta", "alpha"} <= set(names)
        assert set(names) - before == {"zeta", "alpha"}

    def test_a_taken_name_conflicts(self, store: CollectionStore) -> None:
        store.create(PRIVATE)
        with pytest.raises(ConflictError):
            store.create(Collection("alice-private", readable_roles=("viewer",)))
        assert store.get("alice-private") == PRIVATE  # unchanged

    def test_replace_overwrites_the_lists(self, store: CollectionStore) -> None:
        store.create(PRIVATE)
        changed = Collection("alice-private", "renamed", ("editor",), ("bob",), (), ())
        store.replace(changed)
        assert store.get("alice-private") == changed

    def test_replace_of_an_unknown_collection_fails(self, store: CollectionStore) -> None:
        with pytest.raises(NotFoundError):
            store.replace(Collection("ghost"))
        assert store.get("ghost") is None

    def test_delete(self, store: CollectionStore) -> None:
        store.create(PRIVATE)
        assert store.delete("alice-private") is True
        assert store.get("alice-private") is None
        assert store.delete("alice-private") is False
