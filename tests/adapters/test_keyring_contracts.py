"""The KeyRing and RotatableKeyRing contracts on the Fernet ring (key file and environment
keys) and on the in-memory ring."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contracts.keyring_contract import KeyRingContract, MakeRing
from tests.contracts.rotatable_keyring_contract import RotatableKeyRingContract
from xnai.adapters.memory import MemoryKeyRing
from xnai.adapters.security.keyring import FernetKeyRing
from xnai.domain.keys import USER_DATA, RotatableKeyRing


class TestKeyFileContract(KeyRingContract):
    @pytest.fixture
    def make_ring(self, tmp_path: Path) -> MakeRing:
        path = tmp_path / "keys" / "master.key"
        FernetKeyRing.open(path, create=True)
        return lambda enabled: FernetKeyRing.open(path, enabled=enabled)


class TestEnvironmentKeysContract(KeyRingContract):
    @pytest.fixture
    def make_ring(self) -> MakeRing:
        keys = [FernetKeyRing.generate_key(), FernetKeyRing.generate_key()]
        return lambda enabled: FernetKeyRing.from_keys(keys, enabled=enabled)


class TestMemoryContract(KeyRingContract):
    @pytest.fixture
    def make_ring(self) -> MakeRing:
        return lambda enabled: MemoryKeyRing("contract", enabled=enabled)


class TestKeyFileRotationContract(RotatableKeyRingContract):
    @pytest.fixture
    def ring(self, tmp_path: Path) -> RotatableKeyRing:
        return FernetKeyRing.open(tmp_path / "keys" / "master.key", create=True)


class TestMemoryRotationContract(RotatableKeyRingContract):
    @pytest.fixture
    def ring(self) -> RotatableKeyRing:
        return MemoryKeyRing()


def test_memory_rings_of_one_seed_hold_the_same_keys() -> None:
    a, b, other = MemoryKeyRing("s"), MemoryKeyRing("s"), MemoryKeyRing("t")
    assert a.mac_key(USER_DATA) == b.mac_key(USER_DATA) != other.mac_key(USER_DATA)
    assert a.add_key().key_id == b.add_key().key_id
    assert a.source == "memory"
