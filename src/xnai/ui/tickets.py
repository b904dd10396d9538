"""Secrets of the chat derived from the key ring: the signing secret of its login cookie and
the sealing of the session token it carries.

The chat's login cookie is a signed (not encrypted) token whose claims the page can read, so
the session token of the signed-in user travels in it sealed (Fernet, a key derived from
the key ring's ``system_config`` MAC key): the page never sees a credential of the HTTP API.
Both secrets change when the master key is rotated; chat users then sign in again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken

from xnai.domain.keys import SYSTEM_CONFIG
from xnai.domain.ports import KeyRing


def _derive(keyring: KeyRing, label: bytes) -> bytes:
    _, mac_key = keyring.mac_key(SYSTEM_CONFIG)
    return hmac.new(mac_key, label, hashlib.sha256).digest()


def cookie_secret(keyring: KeyRing) -> str:
    """The secret that signs the chat's login cookie (stable for one master key)."""
    return _derive(keyring, b"xnai chat: login cookie").hex()


class TicketSealer:
    """Seals session tokens for the login cookie and opens them again."""

    def __init__(self, keyring: KeyRing) -> None:
        key = _derive(keyring, b"xnai chat: session ticket")
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, token: str) -> str:
        """``token`` encrypted and authenticated, as text."""
        return self._fernet.encrypt(token.encode("utf-8")).decode("ascii")

    def open(self, sealed: str) -> str | None:
        """The token inside ``sealed``; None when it was altered or sealed under another key."""
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError, ValueError):
            return None
