"""Behaviour every RotatableKeyRing adapter must share; subclass and override `ring`."""

from __future__ import annotations

from datetime import datetime

import pytest

from xnai.domain.errors import IntegrityError
from xnai.domain.keys import AUDIT_LOGS, USER_DATA, KeyState, RotatableKeyRing

SECRET = b"rotation keeps this readable"


class RotatableKeyRingContract:
    """Mixin of contract tests; a `Test...` subclass supplies a fresh one-key `ring`."""

    @pytest.fixture
    def ring(self) -> RotatableKeyRing:
        """The ring under test (subclasses override this fixture)."""
        pytest.fail("RotatableKeyRingContract subclasses must override the `ring` fixture")

    def test_satisfies_the_port(self, ring: RotatableKeyRing) -> None:
        assert isinstance(ring, RotatableKeyRing)
        assert isinstance(ring.source, str) and ring.source
        assert ring.created_at is None or isinstance(ring.created_at, datetime)

    def test_starts_with_one_current_key(self, ring: RotatableKeyRing) -> None:
        keys = ring.list_keys()
        assert [k.state for k in keys] == [KeyState.CURRENT]
        assert keys[0].key_id == ring.mac_key(AUDIT_LOGS)[0]

    def test_a_new_key_encrypts_while_the_old_one_still_decrypts(
        self, ring: RotatableKeyRing
    ) -> None:
        old_token = ring.encrypt(USER_DATA, SECRET)
        old_id = ring.list_keys()[0].key_id
        new = ring.add_key()
        assert new.state is KeyState.CURRENT and new.key_id != old_id
        assert [(k.key_id, k.state) for k in ring.list_keys()] == [
            (new.key_id, KeyState.CURRENT),
            (old_id, KeyState.PREVIOUS),
        ]
        assert ring.decrypt(USER_DATA, old_token) == SECRET
        assert ring.mac_key(AUDIT_LOGS)[0] == new.key_id

    def test_retiring_drops_old_data_keys_but_keeps_the_audit_mac_key(
        self, ring: RotatableKeyRing
    ) -> None:
        old_token = ring.encrypt(USER_DATA, SECRET)
        old_id, old_mac = ring.mac_key(AUDIT_LOGS)
        new = ring.add_key()
        new_token = ring.encrypt(USER_DATA, SECRET)
        assert ring.retire_previous() == [old_id]
        assert [(k.key_id, k.state) for k in ring.list_keys()] == [
            (new.key_id, KeyState.CURRENT),
            (old_id, KeyState.RETIRED),
        ]
        assert ring.list_keys()[1].retired_at is not None
        assert ring.decrypt(USER_DATA, new_token) == SECRET
        with pytest.raises(IntegrityError):
            ring.decrypt(USER_DATA, old_token)
        assert ring.mac_key_by_id(AUDIT_LOGS, old_id) == old_mac
        assert ring.mac_key_by_id(USER_DATA, old_id) is None

    def test_retiring_with_one_key_retires_nothing(self, ring: RotatableKeyRing) -> None:
        assert ring.retire_previous() == []
        assert [k.state for k in ring.list_keys()] == [KeyState.CURRENT]
