"""The Sealer contract on the Fernet sealer, on the sealers the key rings hand out and on
the in-memory sealer."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.contracts.sealer_contract import MakeSealer, SealerContract
from xnai.adapters.memory import MemoryKeyRing, MemorySealer
from xnai.adapters.security.keyring import FernetKeyRing
from xnai.adapters.security.sealing import FernetSealer
from xnai.domain.keys import SYSTEM_CONFIG


def _key(name: bytes) -> bytes:
    return hashlib.sha256(name).digest()


class TestFernetSealerContract(SealerContract):
    @pytest.fixture
    def make_sealer(self) -> MakeSealer:
        return lambda name: FernetSealer(_key(name))


class TestKeyFileRingSealerContract(SealerContract):
    @pytest.fixture
    def make_sealer(self, tmp_path: Path) -> MakeSealer:
        ring = FernetKeyRing.open(tmp_path / "keys" / "master.key", create=True)
        return lambda name: ring.sealer(SYSTEM_CONFIG, name)


class TestDisabledRingSealerContract(SealerContract):
    """A ring with encryption at rest off still hands out sealers that encrypt."""

    @pytest.fixture
    def make_sealer(self) -> MakeSealer:
        ring = FernetKeyRing.from_keys([FernetKeyRing.generate_key()], enabled=False)
        return lambda name: ring.sealer(SYSTEM_CONFIG, name)


class TestMemoryRingSealerContract(SealerContract):
    @pytest.fixture
    def make_sealer(self) -> MakeSealer:
        ring = MemoryKeyRing("sealer")
        return lambda name: ring.sealer(SYSTEM_CONFIG, name)


class TestMemorySealerContract(SealerContract):
    @pytest.fixture
    def make_sealer(self) -> MakeSealer:
        return lambda name: MemorySealer(_key(name))


def test_the_memory_sealer_is_deterministic() -> None:
    sealer = MemorySealer(_key(b"k"))
    assert sealer.seal(b"same") == MemorySealer(_key(b"k")).seal(b"same")
    assert sealer.seal(b"same") != sealer.seal(b"other")
