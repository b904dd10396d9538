"""Secrets of the chat derived from the key ring."""

from __future__ import annotations

from xnai.adapters.security.keyring import FernetKeyRing
from xnai.ui.tickets import TicketSealer, cookie_secret


def ring(enabled: bool = True) -> FernetKeyRing:
    return FernetKeyRing.from_keys([FernetKeyRing.generate_key()], enabled=enabled)


def test_a_sealed_token_opens_again_and_hides_the_token() -> None:
    keys = ring()
    sealer = TicketSealer(keys)
    sealed = sealer.seal("secret-session-token")
    assert "secret-session-token" not in sealed
    assert TicketSealer(keys).open(sealed) == "secret-session-token"


def test_tokens_are_sealed_even_when_encryption_at_rest_is_off() -> None:
    sealed = TicketSealer(ring(enabled=False)).seal("secret-session-token")
    assert "secret-session-token" not in sealed


def test_altered_or_foreign_tickets_do_not_open() -> None:
    sealer = TicketSealer(ring())
    sealed = sealer.seal("t")
    assert sealer.open(sealed[:-4] + "AAAA") is None
    assert TicketSealer(ring()).open(sealed) is None
    assert sealer.open("not a ticket") is None


def test_the_cookie_secret_is_stable_per_key_and_differs_between_keys() -> None:
    keys = ring()
    assert cookie_secret(keys) == cookie_secret(keys)
    assert len(cookie_secret(keys)) == 64
    assert cookie_secret(keys) != cookie_secret(ring())
