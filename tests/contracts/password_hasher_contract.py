"""Behaviour every PasswordHasher adapter must share; subclass and override `hasher` and
`weaker` (the same hasher with other parameters)."""

from __future__ import annotations

import pytest

from xnai.domain.identity import PasswordHasher

PASSWORD = "correct horse battery staple ünï"


class PasswordHasherContract:
    """Mixin of contract tests; a `Test...` subclass supplies `hasher` and `weaker`."""

    @pytest.fixture
    def hasher(self) -> PasswordHasher:
        """The adapter under test (subclasses override this fixture)."""
        pytest.fail("PasswordHasherContract subclasses must override the `hasher` fixture")

    @pytest.fixture
    def weaker(self) -> PasswordHasher:
        """The same kind of hasher with other (weaker) parameters."""
        pytest.fail("PasswordHasherContract subclasses must override the `weaker` fixture")

    def test_satisfies_the_port(self, hasher: PasswordHasher) -> None:
        assert isinstance(hasher, PasswordHasher)

    def test_the_right_password_verifies(self, hasher: PasswordHasher) -> None:
        stored = hasher.hash(PASSWORD)
        assert PASSWORD not in stored
        assert hasher.verify(stored, PASSWORD) is True

    def test_a_wrong_password_does_not(self, hasher: PasswordHasher) -> None:
        stored = hasher.hash(PASSWORD)
        for wrong in ["", PASSWORD.upper(), PASSWORD + " ", PASSWORD[:-1]]:
            assert hasher.verify(stored, wrong) is False

    def test_hashes_are_salted(self, hasher: PasswordHasher) -> None:
        a, b = hasher.hash(PASSWORD), hasher.hash(PASSWORD)
        assert a != b
        assert hasher.verify(a, PASSWORD) and hasher.verify(b, PASSWORD)

    @pytest.mark.parametrize("garbage", ["", "not a hash", "$argon2id$v=19$broken", "x$1$zz$zz"])
    def test_an_unreadable_hash_never_verifies_and_needs_rehash(
        self, hasher: PasswordHasher, garbage: str
    ) -> None:
        assert hasher.verify(garbage, PASSWORD) is False
        assert hasher.needs_rehash(garbage) is True

    def test_only_hashes_of_other_parameters_need_rehash(
        self, hasher: PasswordHasher, weaker: PasswordHasher
    ) -> None:
        assert hasher.needs_rehash(hasher.hash(PASSWORD)) is False
        old = weaker.hash(PASSWORD)
        assert hasher.needs_rehash(old) is True
        assert hasher.verify(old, PASSWORD) is True  # still logs in, then gets rehashed
