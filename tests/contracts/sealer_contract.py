"""Behaviour every Sealer adapter must share; subclass and override `make_sealer`."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from xnai.domain.ports import Sealer

MakeSealer = Callable[[bytes], Sealer]
SECRET = b"session token 7f3a: the turbine manual, page 7 \xc3\xa4"


def altered(token: bytes, at: int) -> bytes:
    """``token`` with the byte at ``at`` replaced by another printable byte."""
    swap = b"B" if token[at : at + 1] == b"A" else b"A"
    return token[:at] + swap + token[at + 1 :]


class SealerContract:
    """Mixin of contract tests; a `Test...` subclass supplies `make_sealer(key_name)`, a
    factory of sealers that share a key exactly when they share ``key_name``."""

    @pytest.fixture
    def make_sealer(self) -> MakeSealer:
        """Factory of sealers under test (subclasses override this fixture)."""
        pytest.fail("SealerContract subclasses must override the `make_sealer` fixture")

    @pytest.fixture
    def sealer(self, make_sealer: MakeSealer) -> Sealer:
        return make_sealer(b"one")

    def test_satisfies_the_port(self, sealer: Sealer) -> None:
        assert isinstance(sealer, Sealer)

    @pytest.mark.parametrize("data", [SECRET, b"", b"\x00" * 100])
    def test_round_trip(self, sealer: Sealer, data: bytes) -> None:
        assert sealer.open(sealer.seal(data)) == data

    def test_the_token_hides_the_data(self, sealer: Sealer) -> None:
        token = sealer.seal(SECRET)
        assert b"turbine" not in token and SECRET not in token

    def test_a_sealer_of_the_same_key_opens_it(self, make_sealer: MakeSealer) -> None:
        assert make_sealer(b"one").open(make_sealer(b"one").seal(SECRET)) == SECRET

    def test_another_key_cannot_open_it(self, make_sealer: MakeSealer) -> None:
        assert make_sealer(b"two").open(make_sealer(b"one").seal(SECRET)) is None

    @pytest.mark.parametrize("where", ["first", "middle", "last"])
    def test_an_altered_token_opens_to_none(self, sealer: Sealer, where: str) -> None:
        token = sealer.seal(SECRET)
        at = {"first": 0, "middle": len(token) // 2, "last": len(token) - 1}[where]
        assert sealer.open(altered(token, at)) is None

    def test_a_truncated_or_foreign_token_opens_to_none(self, sealer: Sealer) -> None:
        token = sealer.seal(SECRET)
        assert sealer.open(token[:-8]) is None
        assert sealer.open(b"") is None
        assert sealer.open(b"not a token at all") is None
