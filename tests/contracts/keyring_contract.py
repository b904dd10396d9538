"""Behaviour every KeyRing adapter must share; subclass and override `make_ring`."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from xnai.domain.errors import IntegrityError
from xnai.domain.keys import AUDIT_LOGS, CONTEXTS, SYSTEM_CONFIG, USER_DATA
from xnai.domain.ports import KeyRing

MakeRing = Callable[[bool], KeyRing]
SECRET = b"the turbine manual, page 7: torque 42 Nm \xc3\xa4"


def flipped(token: bytes) -> bytes:
    """``token`` with one bit of its last raw byte flipped."""
    raw = bytearray(base64.urlsafe_b64decode(token))
    raw[-1] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw))


class KeyRingContract:
    """Mixin of contract tests; a `Test...` subclass supplies `make_ring(enabled)`, a factory
    of rings over the same keys."""

    @pytest.fixture
    def make_ring(self) -> MakeRing:
        """Factory of rings under test (subclasses override this fixture)."""
        pytest.fail("KeyRingContract subclasses must override the `make_ring` fixture")

    @pytest.fixture
    def ring(self, make_ring: MakeRing) -> KeyRing:
        """An enabled ring."""
        return make_ring(True)

    def test_satisfies_the_port(self, ring: KeyRing) -> None:
        assert isinstance(ring, KeyRing) and ring.enabled is True

    @pytest.mark.parametrize("context", CONTEXTS)
    def test_round_trip_in_every_context(self, ring: KeyRing, context: str) -> None:
        token = ring.encrypt(context, SECRET)
        assert SECRET not in token
        assert ring.decrypt(context, token) == SECRET

    def test_each_encryption_is_fresh(self, ring: KeyRing) -> None:
        assert ring.encrypt(USER_DATA, SECRET) != ring.encrypt(USER_DATA, SECRET)

    def test_contexts_do_not_share_keys(self, ring: KeyRing) -> None:
        token = ring.encrypt(USER_DATA, SECRET)
        with pytest.raises(IntegrityError):
            ring.decrypt(SYSTEM_CONFIG, token)

    def test_tampering_is_an_integrity_error(self, ring: KeyRing) -> None:
        with pytest.raises(IntegrityError):
            ring.decrypt(USER_DATA, flipped(ring.encrypt(USER_DATA, SECRET)))

    def test_an_unknown_context_is_refused(self, ring: KeyRing) -> None:
        with pytest.raises(ValueError):
            ring.encrypt("somewhere", SECRET)

    def test_mac_keys_are_stable_per_context_and_found_by_id(self, ring: KeyRing) -> None:
        key_id, key = ring.mac_key(AUDIT_LOGS)
        assert isinstance(key_id, str) and key_id and len(key) >= 16
        assert ring.mac_key(AUDIT_LOGS) == (key_id, key)
        assert ring.mac_key(USER_DATA)[1] != key
        assert ring.mac_key_by_id(AUDIT_LOGS, key_id) == key
        assert ring.mac_key_by_id(AUDIT_LOGS, "no-such-key") is None

    def test_another_ring_over_the_same_keys_reads_the_data(self, make_ring: MakeRing) -> None:
        token = make_ring(True).encrypt(USER_DATA, SECRET)
        assert make_ring(True).decrypt(USER_DATA, token) == SECRET

    def test_disabled_rings_pass_plain_data_and_still_read_tokens(
        self, make_ring: MakeRing
    ) -> None:
        token = make_ring(True).encrypt(USER_DATA, SECRET)
        off = make_ring(False)
        assert off.enabled is False
        assert off.encrypt(USER_DATA, SECRET) == SECRET
        assert off.decrypt(USER_DATA, SECRET) == SECRET
        assert off.decrypt(USER_DATA, token) == SECRET
