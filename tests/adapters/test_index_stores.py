"""The IndexStore contract on the file store and on the in-memory store."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contracts.index_store_contract import IndexStoreContract
from xnai.adapters.memory import MemoryIndexStore, MemoryKeyRing
from xnai.adapters.storage.generations import FileIndexStore
from xnai.domain.ports import IndexStore


class TestFileContract(IndexStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> IndexStore:
        return FileIndexStore(tmp_path / "data")


class TestEncryptedFileContract(IndexStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> IndexStore:
        return FileIndexStore(tmp_path / "data", MemoryKeyRing())


class TestMemoryContract(IndexStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> IndexStore:
        return MemoryIndexStore(tmp_path / "index")


def test_the_memory_store_makes_its_own_directory_when_given_none() -> None:
    store = MemoryIndexStore()
    staged = store.stage(1)
    assert staged.parent == store.root and store.root.is_dir()
    store.cleanup(set())
