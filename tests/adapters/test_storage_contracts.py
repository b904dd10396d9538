"""The OriginalsStore and StateStore contracts on the file adapters and the in-memory ones."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.contracts.originals_store_contract import OriginalsStoreContract, RawAccess
from tests.contracts.state_store_contract import StateStoreContract
from xnai.adapters.memory import MemoryKeyRing, MemoryOriginals, MemoryStateStore
from xnai.adapters.security.keyring import FernetKeyRing
from xnai.adapters.storage.originals import FileOriginals
from xnai.adapters.storage.state import JsonStateFile
from xnai.domain.ports import OriginalsStore, StateStore


@contextmanager
def _no_lock() -> Iterator[None]:
    yield


class FileBytes:
    """The bytes of a kept file, on disk."""

    def read(self, path: Path) -> bytes:
        return path.read_bytes()

    def write(self, path: Path, data: bytes) -> None:
        path.write_bytes(data)


class MemoryTokens:
    """The ciphertext the in-memory store keeps."""

    def __init__(self, store: MemoryOriginals) -> None:
        self.store = store

    def read(self, path: Path) -> bytes:
        token = self.store.token(path)
        assert token is not None
        return token

    def write(self, path: Path, data: bytes) -> None:
        self.store.replace_token(path, data)


class TestFileOriginalsContract(OriginalsStoreContract):
    @pytest.fixture
    def file_store(self, tmp_path: Path) -> FileOriginals:
        ring = FernetKeyRing.open(tmp_path / "keys" / "master.key", create=True)
        return FileOriginals(tmp_path / "originals", ring, _no_lock)

    @pytest.fixture
    def store(self, file_store: FileOriginals) -> OriginalsStore:
        return file_store

    @pytest.fixture
    def raw(self) -> RawAccess:
        return FileBytes()


class TestMemoryOriginalsContract(OriginalsStoreContract):
    @pytest.fixture
    def memory_store(self) -> MemoryOriginals:
        return MemoryOriginals(MemoryKeyRing("originals contract"))

    @pytest.fixture
    def store(self, memory_store: MemoryOriginals) -> OriginalsStore:
        return memory_store

    @pytest.fixture
    def raw(self, memory_store: MemoryOriginals) -> RawAccess:
        return MemoryTokens(memory_store)


class TestJsonStateFileContract(StateStoreContract):
    @pytest.fixture
    def state(self, tmp_path: Path) -> StateStore:
        return JsonStateFile(tmp_path / "state.json")


class TestMemoryStateStoreContract(StateStoreContract):
    @pytest.fixture
    def state(self) -> StateStore:
        return MemoryStateStore()


def test_the_state_file_survives_a_restart(tmp_path: Path) -> None:
    JsonStateFile(tmp_path / "state.json").set("last_run:retention", "2026-12-05")
    assert JsonStateFile(tmp_path / "state.json").get("last_run:retention") == "2026-12-05"


def test_an_unreadable_state_file_reads_as_empty(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text("{not json", encoding="utf-8")
    state = JsonStateFile(tmp_path / "state.json")
    assert state.get("k") is None
    state.set("k", 1)
    assert state.get("k") == 1
