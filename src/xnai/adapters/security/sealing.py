"""Sealing short secrets under one derived key (Fernet: AES-CBC with an HMAC)."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken


class FernetSealer:
    """Seals bytes under one 32-byte key and opens them again; it always encrypts, whether
    or not encryption at rest is on."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, data: bytes) -> bytes:
        """``data`` encrypted and authenticated."""
        return self._fernet.encrypt(data)

    def open(self, token: bytes) -> bytes | None:
        """The data inside ``token``; None when it was altered or sealed under another key."""
        try:
            return self._fernet.decrypt(token)
        except (InvalidToken, ValueError):
            return None
