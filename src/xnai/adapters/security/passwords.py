"""Argon2id password hashes and the bundled list of common and breached passwords."""

from __future__ import annotations

import threading
from importlib import resources

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

LIST_FILE = "common_passwords.txt"


class Argon2Hasher:
    """Argon2id; the defaults are RFC 9106's second recommendation (t=3, 64 MiB, p=4)."""

    def __init__(self, time_cost: int = 3, memory_cost: int = 65536, parallelism: int = 4) -> None:
        self._ph = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            type=Type.ID,
        )

    def hash(self, password: str) -> str:
        """A salted hash in the PHC string format (``$argon2id$v=19$...``)."""
        return self._ph.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        """True when ``password`` matches; a mismatch or an unreadable hash is False."""
        try:
            return self._ph.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """The hash was made with other parameters than the current ones."""
        try:
            return self._ph.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True


class CommonPasswords:
    """Membership test against the bundled list, case-insensitive; loaded on first use."""

    def __init__(self, entries: frozenset[str] | None = None) -> None:
        self._entries = entries
        self._lock = threading.Lock()

    def __call__(self, password: str) -> bool:
        """Whether ``password`` is on the list (compared in lower case)."""
        return password.lower() in self.entries

    @property
    def entries(self) -> frozenset[str]:
        """Every listed password, lower case."""
        if self._entries is None:
            with self._lock:
                if self._entries is None:
                    self._entries = load_common_passwords()
        return self._entries


def load_common_passwords() -> frozenset[str]:
    """Read the bundled list (one password per line)."""
    text = resources.files(__package__).joinpath(LIST_FILE).read_text(encoding="utf-8")
    return frozenset(line.lower() for line in text.splitlines() if line)
