"""Behaviour every Signer adapter must share; subclass and override `ring` and
`make_signer`."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from xnai.domain.keys import RotatableKeyRing
from xnai.domain.ports import KeyRing, SignatureVerifier, Signer

MakeSigner = Callable[[KeyRing], Signer]
DATA = b'{"answer":"The pump runs at 1450 rpm. [1]","citations":[]}'


def flipped(data: bytes, at: int) -> bytes:
    """``data`` with one bit of the byte at ``at`` flipped."""
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


class SignerContract:
    """Mixin of contract tests; a `Test...` subclass supplies a fresh one-key `ring` and
    `make_signer`, which builds the signer under test over a key ring."""

    @pytest.fixture
    def ring(self) -> RotatableKeyRing:
        """The key ring the signer derives its keys from (subclasses override this)."""
        pytest.fail("SignerContract subclasses must override the `ring` fixture")

    @pytest.fixture
    def make_signer(self) -> MakeSigner:
        """Factory of signers under test (subclasses override this fixture)."""
        pytest.fail("SignerContract subclasses must override the `make_signer` fixture")

    @pytest.fixture
    def signer(self, ring: RotatableKeyRing, make_signer: MakeSigner) -> Signer:
        return make_signer(ring)

    def test_satisfies_the_port(self, signer: Signer) -> None:
        assert isinstance(signer, Signer) and isinstance(signer, SignatureVerifier)
        assert isinstance(signer.algorithm, str) and signer.algorithm

    def test_signs_with_the_current_key_and_verifies(
        self, ring: RotatableKeyRing, signer: Signer
    ) -> None:
        key_id, signature = signer.sign(DATA)
        assert key_id == ring.list_keys()[0].key_id
        assert signature and signer.verify(DATA, signature, key_id)

    def test_signatures_are_reproducible_by_another_signer_of_the_ring(
        self, ring: RotatableKeyRing, make_signer: MakeSigner
    ) -> None:
        key_id, signature = make_signer(ring).sign(DATA)
        assert make_signer(ring).verify(DATA, signature, key_id)

    @pytest.mark.parametrize("where", ["first", "middle", "last"])
    def test_altered_data_fails(self, signer: Signer, where: str) -> None:
        key_id, signature = signer.sign(DATA)
        at = {"first": 0, "middle": len(DATA) // 2, "last": len(DATA) - 1}[where]
        assert not signer.verify(flipped(DATA, at), signature, key_id)

    def test_an_altered_truncated_or_empty_signature_fails(self, signer: Signer) -> None:
        key_id, signature = signer.sign(DATA)
        assert not signer.verify(DATA, flipped(signature, 3), key_id)
        assert not signer.verify(DATA, signature[:-1], key_id)
        assert not signer.verify(DATA, b"", key_id)

    def test_an_unknown_key_id_fails(self, signer: Signer) -> None:
        _, signature = signer.sign(DATA)
        assert not signer.verify(DATA, signature, "000000000000")

    def test_another_installation_cannot_verify_it(
        self, signer: Signer, make_signer: MakeSigner
    ) -> None:
        from xnai.adapters.memory import MemoryKeyRing

        key_id, signature = signer.sign(DATA)
        assert not make_signer(MemoryKeyRing("another installation")).verify(
            DATA, signature, key_id
        )

    def test_signatures_survive_a_rotation_and_retirement(
        self, ring: RotatableKeyRing, signer: Signer
    ) -> None:
        old_id, old_signature = signer.sign(DATA)
        new = ring.add_key()
        new_id, new_signature = signer.sign(DATA)
        assert new_id == new.key_id != old_id
        ring.retire_previous()
        assert signer.verify(DATA, old_signature, old_id)
        assert signer.verify(DATA, new_signature, new_id)
        assert not signer.verify(DATA, old_signature, new_id)

    def test_the_public_key_is_stable_and_per_key(
        self, ring: RotatableKeyRing, signer: Signer
    ) -> None:
        current = signer.public_key()
        if current is None:  # a symmetric algorithm: nothing may be published
            assert signer.public_key(ring.list_keys()[0].key_id) is None
            return
        assert current.startswith("-----BEGIN PUBLIC KEY-----")
        assert signer.public_key(ring.list_keys()[0].key_id) == current == signer.public_key()
        assert signer.public_key("000000000000") is None
        old_id = ring.list_keys()[0].key_id
        ring.add_key()
        ring.retire_previous()
        assert signer.public_key() != current
        assert signer.public_key(old_id) == current
