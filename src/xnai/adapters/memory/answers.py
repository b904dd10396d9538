"""In-memory answer bundles: encrypted records keyed by asker and answer id."""

from __future__ import annotations

import threading
from datetime import datetime

from xnai.adapters.memory.keys import MemoryKeyRing
from xnai.adapters.storage.answer_bundles import read_record, record_bundle, record_bytes
from xnai.domain.bundles import AnswerBundle
from xnai.domain.errors import IntegrityError
from xnai.domain.keys import USER_DATA
from xnai.domain.ports import KeyRing


class MemoryAnswerBundles:
    """The ``AnswerBundleStore`` reference (and ``Reencryptable``): each record encrypted
    with the ``user_data`` key, as the file store keeps it."""

    name = "answer bundles (memory)"

    def __init__(self, keyring: KeyRing | None = None) -> None:
        self.keyring = keyring or MemoryKeyRing("answers")
        self._tokens: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()

    def put(self, user_id: str, bundle: AnswerBundle) -> None:
        """Keep the bundle, encrypted, under (asker, answer id)."""
        token = self.keyring.encrypt(USER_DATA, record_bytes(user_id, bundle))
        with self._lock:
            self._tokens[(user_id, bundle.answer_id)] = token

    def get(self, user_id: str, answer_id: str) -> AnswerBundle | None:
        """The bundle of ``answer_id`` asked by ``user_id``; None when there is none."""
        token = self._tokens.get((user_id, answer_id))
        if token is None:
            return None
        return record_bundle(self.keyring.decrypt(USER_DATA, token), user_id, answer_id)

    def of_user(self, user_id: str) -> list[AnswerBundle]:
        """Every bundle of ``user_id``, oldest first."""
        with self._lock:
            ids = [a for (u, a) in self._tokens if u == user_id]
        found = [self.get(user_id, a) for a in ids]
        bundles = [b for b in found if b is not None]
        return sorted(bundles, key=lambda b: (b.created_at, b.answer_id))

    def forget_user(self, user_id: str) -> int:
        """Delete every bundle of ``user_id``; how many went."""
        with self._lock:
            gone = [key for key in self._tokens if key[0] == user_id]
            for key in gone:
                del self._tokens[key]
        return len(gone)

    def purge_before(self, cutoff: datetime) -> int:
        """Delete every bundle made before ``cutoff``; how many went."""
        with self._lock:
            keys = list(self._tokens)
        gone = 0
        for key in keys:
            token = self._tokens.get(key)
            if token is None:
                continue
            try:
                _, bundle = read_record(self.keyring.decrypt(USER_DATA, token), key[1])
            except IntegrityError:
                continue  # left in place, as the file store leaves an unreadable file
            if bundle.made_before(cutoff):
                with self._lock:
                    gone += self._tokens.pop(key, None) is not None
        return gone

    def reencrypt(self) -> int:
        """Rewrite every record under the ring's current key."""
        with self._lock:
            for key, token in list(self._tokens.items()):
                plain = self.keyring.decrypt(USER_DATA, token)
                self._tokens[key] = self.keyring.encrypt(USER_DATA, plain)
            return len(self._tokens)

    def token(self, user_id: str, answer_id: str) -> bytes | None:
        """The stored ciphertext of one bundle."""
        return self._tokens.get((user_id, answer_id))

    def replace_token(self, user_id: str, answer_id: str, token: bytes) -> None:
        """Overwrite the ciphertext of one bundle (how tests alter data at rest)."""
        with self._lock:
            self._tokens[(user_id, answer_id)] = token
