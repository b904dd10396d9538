"""Secrets of the chat derived from the key ring: the signing secret of its login cookie and
the sealing of the session token it carries.

The chat's login cookie is a signed (not encrypted) token whose claims the page can read, so
the session token of the signed-in user travels in it sealed (the key ring's sealer, keyed
from the ``system_config`` MAC key): the page never sees a credential of the HTTP API.
Both secrets change when the master key is rotated; chat users then sign in again.
"""

from __future__ import annotations

import hashlib
import hmac

from xnai.domain.keys import SYSTEM_CONFIG
from xnai.domain.ports import KeyRing


def cookie_secret(keyring: KeyRing) -> str:
    """The secret that signs the chat's login cookie (stable for one master key)."""
    _, mac_key = keyring.mac_key(SYSTEM_CONFIG)
    return hmac.new(mac_key, b"xnai chat: login cookie", hashlib.sha256).hexdigest()


class TicketSealer:
    """Seals session tokens for the login cookie and opens them again."""

    def __init__(self, keyring: KeyRing) -> None:
        self._sealer = keyring.sealer(SYSTEM_CONFIG, b"xnai chat: session ticket")

    def seal(self, token: str) -> str:
        """``token`` encrypted and authenticated, as text."""
        return self._sealer.seal(token.encode("utf-8")).decode("ascii")

    def open(self, sealed: str) -> str | None:
        """The token inside ``sealed``; None when it was altered or sealed under another key."""
        try:
            token = self._sealer.open(sealed.encode("ascii"))
            return None if token is None else token.decode("utf-8")
        except UnicodeError:
            return None
