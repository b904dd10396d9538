"""A sealer built from the standard library alone: SHA-256 keystream, HMAC-SHA256 tag."""

from __future__ import annotations

import hashlib
import hmac

_TAG = 16


class MemorySealer:
    """The ``Sealer`` reference: deterministic authenticated encryption (synthetic IV).

    The tag over the data doubles as the keystream's nonce, so equal data under one key
    seals to one token and a run is reproducible; any altered byte fails the tag.
    """

    def __init__(self, key: bytes) -> None:
        self._mac_key = hmac.new(key, b"mac", hashlib.sha256).digest()
        self._enc_key = hmac.new(key, b"enc", hashlib.sha256).digest()

    def seal(self, data: bytes) -> bytes:
        """``data`` encrypted and authenticated: tag, then ciphertext."""
        tag = hmac.new(self._mac_key, data, hashlib.sha256).digest()[:_TAG]
        return tag + _xor(data, self._keystream(tag, len(data)))

    def open(self, token: bytes) -> bytes | None:
        """The data inside ``token``; None when it was altered or sealed under another key."""
        tag, body = token[:_TAG], token[_TAG:]
        if len(tag) < _TAG:
            return None
        data = _xor(body, self._keystream(tag, len(body)))
        expected = hmac.new(self._mac_key, data, hashlib.sha256).digest()[:_TAG]
        return data if hmac.compare_digest(tag, expected) else None

    def _keystream(self, nonce: bytes, size: int) -> bytes:
        blocks = (size + 31) // 32
        return b"".join(
            hashlib.sha256(self._enc_key + nonce + i.to_bytes(8, "big")).digest()
            for i in range(blocks)
        )[:size]


def _xor(data: bytes, stream: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, stream, strict=True))
