"""Whole files encrypted with one key-ring context, re-encrypted in place by a rotation."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from xnai.adapters.storage.fsutil import TMP_MARK, atomic_write_bytes
from xnai.domain.errors import IntegrityError
from xnai.domain.ports import KeyRing


class EncryptedFiles:
    """The files under ``root`` matching ``patterns`` (globs), each one token of ``context``."""

    def __init__(
        self, name: str, root: Path, patterns: Sequence[str], keyring: KeyRing, context: str
    ) -> None:
        self.name = name
        self.root = root
        self.patterns = tuple(patterns)
        self.keyring = keyring
        self.context = context

    def paths(self) -> list[Path]:
        """The files that exist now, temporary files excluded."""
        found = {p for pattern in self.patterns for p in self.root.glob(pattern) if p.is_file()}
        return sorted(p for p in found if not p.name.startswith(TMP_MARK))

    def reencrypt(self) -> int:
        """Rewrite every file under the current key (atomically, one file at a time)."""
        count = 0
        for path in self.paths():
            try:
                plain = read_decrypted(path, self.keyring, self.context)
            except FileNotFoundError:  # removed meanwhile (an old generation cleaned up)
                continue
            atomic_write_bytes(path, self.keyring.encrypt(self.context, plain))
            count += 1
        return count


def read_decrypted(path: Path, keyring: KeyRing, context: str) -> bytes:
    """The plaintext of an encrypted file; IntegrityError names the file."""
    data = path.read_bytes()
    try:
        return keyring.decrypt(context, data)
    except IntegrityError as exc:
        raise IntegrityError(f"{path}: {exc}") from None
