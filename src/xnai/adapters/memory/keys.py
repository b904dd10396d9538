"""In-memory key adapters: a rotatable key ring and a store of encrypted values."""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from xnai.adapters.security.keyring import FernetKeyRing, MasterKey, RetiredKey, _Ring
from xnai.domain.keys import AUDIT_LOGS, KeyInfo, KeyState
from xnai.domain.ports import KeyRing


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class MemoryKeyRing(FernetKeyRing):
    """The Fernet key ring with its master keys kept in memory: rotation adds and retires
    keys without a key file. Master keys come from ``seed``, so a run is reproducible."""

    def __init__(
        self, seed: str = "xnai", *, enabled: bool = True, clock: Callable[[], datetime] = _now
    ) -> None:
        self._seed = seed
        self._counter = itertools.count(1)
        self._clock = clock
        super().__init__([self._new_master()], enabled=enabled)
        self.source = "memory"
        self._rotation = threading.Lock()

    def add_key(self) -> KeyInfo:
        """Put a new master key in front of the others."""
        with self._rotation:
            new = self._new_master()
            ring = self._ring
            self._ring = _Ring.of([new, *ring.masters], ring.retired, None)
        return KeyInfo(new.key_id, KeyState.CURRENT, new.created_at)

    def retire_previous(self) -> list[str]:
        """Keep only the current master key; the others leave their audit MAC key behind."""
        with self._rotation:
            ring, when = self._ring, self._clock()
            gone = [
                RetiredKey(m.key_id, m.created_at, when, m.mac_key(AUDIT_LOGS))
                for m in ring.masters[1:]
            ]
            self._ring = _Ring.of(ring.masters[:1], [*gone, *ring.retired], None)
        return [g.key_id for g in gone]

    def _new_master(self) -> MasterKey:
        secret = hashlib.sha256(f"{self._seed}:{next(self._counter)}".encode()).digest()
        return MasterKey(secret, self._clock())


class MemoryEncryptedStore:
    """Named values encrypted with one key-ring context (the ``Reencryptable`` reference)."""

    def __init__(self, keyring: KeyRing, context: str, name: str = "memory values") -> None:
        self.name = name
        self.keyring = keyring
        self.context = context
        self._tokens: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put(self, key: str, value: bytes) -> None:
        """Encrypt and keep ``value`` under ``key``."""
        token = self.keyring.encrypt(self.context, value)
        with self._lock:
            self._tokens[key] = token

    def get(self, key: str) -> bytes | None:
        """The plaintext under ``key``; IntegrityError when its key is not on the ring."""
        token = self._tokens.get(key)
        return None if token is None else self.keyring.decrypt(self.context, token)

    def token(self, key: str) -> bytes | None:
        """The stored ciphertext under ``key``."""
        return self._tokens.get(key)

    def reencrypt(self) -> int:
        """Rewrite every value under the ring's current key; return how many."""
        with self._lock:
            for key, token in list(self._tokens.items()):
                plain = self.keyring.decrypt(self.context, token)
                self._tokens[key] = self.keyring.encrypt(self.context, plain)
            return len(self._tokens)
