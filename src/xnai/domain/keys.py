"""Key-ring vocabulary: encryption contexts, key states, rotation ports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from xnai.domain.ports import KeyRing

USER_DATA = "user_data"
SYSTEM_CONFIG = "system_config"
AUDIT_LOGS = "audit_logs"
AI_MODELS = "ai_models"
CONTEXTS = (USER_DATA, SYSTEM_CONFIG, AUDIT_LOGS, AI_MODELS)


class KeyState(StrEnum):
    """Where a master key is in its life."""

    CURRENT = "current"  # encrypts new data; decrypts
    PREVIOUS = "previous"  # decrypts only: a rotation has not finished re-encrypting
    RETIRED = "retired"  # gone; only its audit_logs MAC key is kept to verify old lines


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What may be shown about a master key: never the key material."""

    key_id: str
    state: KeyState
    created_at: datetime | None  # None when the key comes from the environment
    retired_at: datetime | None = None


@runtime_checkable
class RotatableKeyRing(KeyRing, Protocol):
    """A key ring whose master keys can be added and retired."""

    source: str  # where the master keys live, for humans ("key file ...", "environment")

    @property
    def created_at(self) -> datetime | None:
        """Creation time of the current master key (None when unknown)."""
        ...

    def list_keys(self) -> list[KeyInfo]:
        """Every master key, current first, then previous ones, then retired ones."""
        ...

    def add_key(self) -> KeyInfo:
        """Make a new master key current; the old ones stay to decrypt (MultiFernet)."""
        ...

    def retire_previous(self) -> list[str]:
        """Drop every master key but the current one; return the ids that went."""
        ...


@runtime_checkable
class Reencryptable(Protocol):
    """A store of encrypted data that can rewrite it under the key ring's current key."""

    name: str

    def reencrypt(self) -> int:
        """Decrypt with any key on the ring and encrypt with the current one; return the
        number of items rewritten. Safe to repeat; readable at every step."""
        ...
