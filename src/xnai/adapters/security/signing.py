"""Ed25519 signatures under keys derived from the master keys: no key file of its own.

Each master key yields one signing key: HKDF-SHA256 over its ``audit_logs`` MAC key with
this module's own label gives the 32-byte Ed25519 seed. That MAC key is the part of a master
key the ring keeps after the key is retired, so bundles signed before a rotation still
verify after it; the label keeps the signing key apart from every other derived key.
"""

from __future__ import annotations

import functools

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from xnai.domain.errors import InvalidInputError
from xnai.domain.keys import AUDIT_LOGS
from xnai.domain.ports import KeyRing

ALGORITHM = "ed25519"
SIGNING_LABEL = b"xnai answer bundles: ed25519 signing key"


@functools.lru_cache(maxsize=16)
def _private_key(mac_key: bytes) -> Ed25519PrivateKey:
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=SIGNING_LABEL).derive(mac_key)
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_pem(key: Ed25519PublicKey) -> str:
    """``key`` as a PEM ``PUBLIC KEY`` block (SubjectPublicKeyInfo)."""
    raw = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return raw.decode("ascii")


def _checked(public: Ed25519PublicKey, data: bytes, signature: bytes) -> bool:
    try:
        public.verify(signature, data)
    except InvalidSignature:
        return False
    return True


class Ed25519Signer:
    """The ``Signer`` port: Ed25519 under the key ring's master keys (current and kept)."""

    algorithm = ALGORITHM

    def __init__(self, keyring: KeyRing) -> None:
        self.keyring = keyring

    def sign(self, data: bytes) -> tuple[str, bytes]:
        """(key id, signature) of ``data`` under the current master key."""
        key_id, mac_key = self.keyring.mac_key(AUDIT_LOGS)
        return key_id, _private_key(mac_key).sign(data)

    def verify(self, data: bytes, signature: bytes, key_id: str) -> bool:
        """True when ``signature`` over ``data`` was made with master key ``key_id``."""
        mac_key = self.keyring.mac_key_by_id(AUDIT_LOGS, key_id)
        if mac_key is None:
            return False
        return _checked(_private_key(mac_key).public_key(), data, signature)

    def public_key(self, key_id: str | None = None) -> str | None:
        """The PEM public key of master key ``key_id`` (default: the current one)."""
        if key_id is None:
            _, mac_key = self.keyring.mac_key(AUDIT_LOGS)
        else:
            found = self.keyring.mac_key_by_id(AUDIT_LOGS, key_id)
            if found is None:
                return None
            mac_key = found
        return public_pem(_private_key(mac_key).public_key())


class PublicKeyVerifier:
    """The ``SignatureVerifier`` port over one published Ed25519 public key, for checking a
    bundle without the installation's keys (the key id is not checked: the key is given)."""

    algorithm = ALGORITHM

    def __init__(self, pem: bytes) -> None:
        try:
            key = serialization.load_pem_public_key(pem)
        except (ValueError, TypeError) as exc:
            raise InvalidInputError(f"not a PEM public key: {exc}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise InvalidInputError("the public key is not an Ed25519 key")
        self._key = key

    def verify(self, data: bytes, signature: bytes, key_id: str) -> bool:
        """True when ``signature`` over ``data`` was made with the private half of the key."""
        return _checked(self._key, data, signature)
