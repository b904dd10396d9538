"""The AnswerBundleStore contract on the file store and the in-memory one."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.bundles import sample_bundle
from tests.contracts.answer_bundle_store_contract import (
    ALICE,
    FIRST,
    AnswerBundleStoreContract,
    RawAccess,
)
from xnai.adapters.memory import MemoryAnswerBundles, MemoryKeyRing
from xnai.adapters.security.keyring import FernetKeyRing
from xnai.adapters.storage.answer_bundles import FileAnswerBundles, asker_folder
from xnai.domain.bundles import AnswerBundleStore


class FileBytes:
    """The bytes of a stored bundle, on disk."""

    def __init__(self, store: FileAnswerBundles) -> None:
        self.store = store

    def path(self, user_id: str, answer_id: str) -> Path:
        return self.store.folder / asker_folder(user_id) / f"{answer_id}.json"

    def read(self, user_id: str, answer_id: str) -> bytes:
        return self.path(user_id, answer_id).read_bytes()

    def write(self, user_id: str, answer_id: str, data: bytes) -> None:
        self.path(user_id, answer_id).write_bytes(data)


class MemoryTokens:
    """The ciphertext the in-memory store keeps."""

    def __init__(self, store: MemoryAnswerBundles) -> None:
        self.store = store

    def read(self, user_id: str, answer_id: str) -> bytes:
        token = self.store.token(user_id, answer_id)
        assert token is not None
        return token

    def write(self, user_id: str, answer_id: str, data: bytes) -> None:
        self.store.replace_token(user_id, answer_id, data)


@pytest.fixture
def file_store(tmp_path: Path) -> FileAnswerBundles:
    ring = FernetKeyRing.open(tmp_path / "keys" / "master.key", create=True)
    return FileAnswerBundles(tmp_path / "answers", ring)


class TestFileAnswerBundlesContract(AnswerBundleStoreContract):
    @pytest.fixture
    def store(self, file_store: FileAnswerBundles) -> AnswerBundleStore:
        return file_store

    @pytest.fixture
    def raw(self, file_store: FileAnswerBundles) -> RawAccess:
        return FileBytes(file_store)


class TestMemoryAnswerBundlesContract(AnswerBundleStoreContract):
    @pytest.fixture
    def memory_store(self) -> MemoryAnswerBundles:
        return MemoryAnswerBundles(MemoryKeyRing("bundle contract"))

    @pytest.fixture
    def store(self, memory_store: MemoryAnswerBundles) -> AnswerBundleStore:
        return memory_store

    @pytest.fixture
    def raw(self, memory_store: MemoryAnswerBundles) -> RawAccess:
        return MemoryTokens(memory_store)


def test_files_are_owner_only_and_name_no_user(file_store: FileAnswerBundles) -> None:
    file_store.put(ALICE, sample_bundle(FIRST))
    path = FileBytes(file_store).path(ALICE, FIRST)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert ALICE not in str(path)


def test_with_encryption_at_rest_off_bundles_are_kept_as_plain_json(tmp_path: Path) -> None:
    ring = FernetKeyRing.from_keys([FernetKeyRing.generate_key()], enabled=False)
    store = FileAnswerBundles(tmp_path / "answers", ring)
    store.put(ALICE, sample_bundle(FIRST, answer="plain turbine"))
    assert b"plain turbine" in FileBytes(store).read(ALICE, FIRST)
    assert store.get(ALICE, FIRST) == sample_bundle(FIRST, answer="plain turbine")
