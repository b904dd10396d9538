"""Behaviour every IndexStore adapter must share; subclass and override the `store` fixture."""

from __future__ import annotations

import threading

import pytest

from xnai.domain.ports import IndexStore

MANIFEST = {"documents": [{"source": "/docs/pump.md", "title": "Pumpe"}], "generation": 3}


def publish(store: IndexStore, generation: int, payload: str = "vectors") -> None:
    """Stage a generation with one file and publish it."""
    staged = store.stage(generation)
    (staged / "index.bin").write_text(payload, encoding="utf-8")
    store.publish(staged, generation)


class IndexStoreContract:
    """Mixin of contract tests; a `Test...` subclass supplies an empty `store`."""

    @pytest.fixture
    def store(self) -> IndexStore:
        """The store under test (subclasses override this fixture)."""
        pytest.fail("IndexStoreContract subclasses must override the `store` fixture")

    def test_satisfies_the_port(self, store: IndexStore) -> None:
        assert isinstance(store, IndexStore)

    def test_starts_without_pointer_manifest_or_generations(self, store: IndexStore) -> None:
        assert store.read_pointer() is None and store.pointer_stamp() is None
        assert store.read_manifest() is None and store.generations() == []

    def test_a_published_generation_holds_the_staged_files(self, store: IndexStore) -> None:
        staged = store.stage(1)
        assert staged.is_dir() and not any(staged.iterdir())
        (staged / "index.bin").write_text("v1", encoding="utf-8")
        final = store.publish(staged, 1)
        assert final == store.generation_dir(1)
        assert (final / "index.bin").read_text(encoding="utf-8") == "v1"
        assert not staged.exists() and store.generations() == [1]

    def test_recorded_digests_name_every_changed_or_missing_file(self, store: IndexStore) -> None:
        staged = store.stage(1)
        for name in ("a.bin", "b.bin", "c.bin"):
            (staged / name).write_bytes(name.encode() * 100)
        store.describe(staged, {"generation": 1})
        final = store.publish(staged, 1)
        assert store.damage(1) == []
        (final / "a.bin").write_bytes(b"other bytes")
        (final / "b.bin").unlink()
        problems = store.damage(1)
        assert len(problems) == 2
        assert "a.bin" in problems[0] and "b.bin" in problems[1] and "missing" in problems[1]

    def test_staging_is_invisible_until_published(self, store: IndexStore) -> None:
        (store.stage(4) / "index.bin").write_text("half", encoding="utf-8")
        assert store.generations() == []

    def test_publishing_replaces_an_unreferenced_leftover(self, store: IndexStore) -> None:
        publish(store, 2, "old")
        publish(store, 2, "new")
        assert (store.generation_dir(2) / "index.bin").read_text(encoding="utf-8") == "new"

    def test_the_pointer_moves_and_its_stamp_changes(self, store: IndexStore) -> None:
        publish(store, 1)
        store.set_pointer(1)
        first = store.pointer_stamp()
        assert store.read_pointer() == 1 and first is not None
        publish(store, 2)
        store.set_pointer(2)
        assert store.read_pointer() == 2 and store.pointer_stamp() != first

    def test_the_manifest_round_trips_as_a_copy(self, store: IndexStore) -> None:
        store.write_manifest(MANIFEST)
        got = store.read_manifest()
        assert got == MANIFEST
        assert got is not None
        got["generation"] = 99
        assert store.read_manifest() == MANIFEST
        store.write_manifest({"generation": 4})
        assert store.read_manifest() == {"generation": 4}

    def test_generations_are_listed_in_order(self, store: IndexStore) -> None:
        for generation in (3, 1, 12):
            publish(store, generation)
        assert store.generations() == [1, 3, 12]

    def test_cleanup_removes_leftovers_and_unkept_generations(self, store: IndexStore) -> None:
        for generation in (1, 2, 3):
            publish(store, generation)
        leftover = store.stage(4)
        gone = store.cleanup({2, 3})
        assert store.generations() == [2, 3]
        assert not leftover.exists() and not store.generation_dir(1).exists()
        assert {store.generation_dir(1), leftover} <= set(gone)
        assert store.cleanup({2, 3}) == []

    def test_try_lock_fails_while_the_lock_is_held(self, store: IndexStore) -> None:
        with store.try_lock() as got:
            assert got is True
        held, release = threading.Event(), threading.Event()

        def writer() -> None:
            with store.lock():
                held.set()
                release.wait(5)

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            assert held.wait(5)
            with store.try_lock() as got:
                assert got is False
        finally:
            release.set()
            thread.join(5)
        with store.try_lock() as got:
            assert got is True

    def test_the_lock_serialises_writers(self, store: IndexStore) -> None:
        inside, overlaps = [0], []

        def write() -> None:
            with store.lock():
                inside[0] += 1
                overlaps.append(inside[0])
                threading.Event().wait(0.01)
                inside[0] -= 1

        threads = [threading.Thread(target=write) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(5)
        assert overlaps == [1, 1, 1, 1]
