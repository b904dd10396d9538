"""The Signer contract on Ed25519 over each kind of key ring and on the in-memory HMAC
signer; a published Ed25519 public key verifies without the master key."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tests.contracts.signer_contract import DATA, MakeSigner, SignerContract, flipped
from xnai.adapters.memory import HmacSigner, MemoryKeyRing
from xnai.adapters.security.keyring import FernetKeyRing
from xnai.adapters.security.signing import Ed25519Signer, PublicKeyVerifier
from xnai.domain.errors import InvalidInputError
from xnai.domain.keys import RotatableKeyRing
from xnai.domain.ports import SignatureVerifier


class TestEd25519OnKeyFileContract(SignerContract):
    @pytest.fixture
    def ring(self, tmp_path: Path) -> RotatableKeyRing:
        return FernetKeyRing.open(tmp_path / "keys" / "master.key", create=True)

    @pytest.fixture
    def make_signer(self) -> MakeSigner:
        return Ed25519Signer


class TestEd25519OnMemoryRingContract(SignerContract):
    @pytest.fixture
    def ring(self) -> RotatableKeyRing:
        return MemoryKeyRing("signer")

    @pytest.fixture
    def make_signer(self) -> MakeSigner:
        return Ed25519Signer


class TestHmacSignerContract(SignerContract):
    @pytest.fixture
    def ring(self) -> RotatableKeyRing:
        return MemoryKeyRing("hmac signer")

    @pytest.fixture
    def make_signer(self) -> MakeSigner:
        return HmacSigner


def test_the_signing_key_follows_the_master_key_not_the_process(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "master.key"
    first = Ed25519Signer(FernetKeyRing.open(path, create=True))
    again = Ed25519Signer(FernetKeyRing.open(path))
    assert first.public_key() == again.public_key()
    key_id, signature = first.sign(DATA)
    assert again.verify(DATA, signature, key_id)


def test_keys_from_the_environment_sign_too() -> None:
    key = FernetKeyRing.generate_key()
    signer = Ed25519Signer(FernetKeyRing.from_keys([key], enabled=False))
    key_id, signature = signer.sign(DATA)
    assert Ed25519Signer(FernetKeyRing.from_keys([key])).verify(DATA, signature, key_id)


def test_a_published_public_key_verifies_without_the_master_key() -> None:
    signer = Ed25519Signer(MemoryKeyRing("published"))
    pem = signer.public_key()
    assert pem is not None
    verifier = PublicKeyVerifier(pem.encode())
    assert isinstance(verifier, SignatureVerifier) and verifier.algorithm == signer.algorithm
    key_id, signature = signer.sign(DATA)
    assert verifier.verify(DATA, signature, key_id)
    assert not verifier.verify(flipped(DATA, 5), signature, key_id)
    other = Ed25519Signer(MemoryKeyRing("someone else")).public_key()
    assert other is not None and not PublicKeyVerifier(other.encode()).verify(
        DATA, signature, key_id
    )


def test_the_public_key_is_a_standard_ed25519_key_any_library_reads() -> None:
    signer = Ed25519Signer(MemoryKeyRing("standard"))
    pem = signer.public_key()
    assert pem is not None
    key = serialization.load_pem_public_key(pem.encode())
    assert isinstance(key, Ed25519PublicKey)
    key_id, signature = signer.sign(DATA)
    key.verify(signature, DATA)  # raises InvalidSignature when it does not hold
    assert len(base64.b64encode(signature)) == 88  # 64 bytes


@pytest.mark.parametrize(
    "pem",
    [b"not a key", b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"],
)
def test_a_file_that_is_no_public_key_is_refused(pem: bytes) -> None:
    with pytest.raises(InvalidInputError, match="public key"):
        PublicKeyVerifier(pem)


def test_an_rsa_public_key_is_refused() -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    public = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(InvalidInputError, match="not an Ed25519 key"):
        PublicKeyVerifier(pem)
