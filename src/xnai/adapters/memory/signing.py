"""A signer built from the standard library alone: HMAC-SHA256 under the key ring's keys."""

from __future__ import annotations

import hashlib
import hmac

from xnai.domain.keys import AUDIT_LOGS
from xnai.domain.ports import KeyRing

_LABEL = b"xnai answer bundles: hmac signing key"


class HmacSigner:
    """The ``Signer`` reference: symmetric signatures (only holders of the master key can
    check them, so it has no public key), kept across rotations like the Ed25519 signer."""

    algorithm = "hmac-sha256"

    def __init__(self, keyring: KeyRing) -> None:
        self.keyring = keyring

    def sign(self, data: bytes) -> tuple[str, bytes]:
        """(key id, HMAC) of ``data`` under the current master key."""
        key_id, mac_key = self.keyring.mac_key(AUDIT_LOGS)
        return key_id, _mac(mac_key, data)

    def verify(self, data: bytes, signature: bytes, key_id: str) -> bool:
        """True when ``signature`` is the HMAC of ``data`` under master key ``key_id``."""
        mac_key = self.keyring.mac_key_by_id(AUDIT_LOGS, key_id)
        return mac_key is not None and hmac.compare_digest(_mac(mac_key, data), signature)

    def public_key(self, key_id: str | None = None) -> str | None:
        """None: an HMAC key is secret."""
        return None


def _mac(mac_key: bytes, data: bytes) -> bytes:
    key = hmac.new(mac_key, _LABEL, hashlib.sha256).digest()
    return hmac.new(key, data, hashlib.sha256).digest()
