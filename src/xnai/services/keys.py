"""Master-key rotation: a new key, everything re-encrypted under it, the old keys retired.

Order matters for crash safety: the new key is written to the key ring before any data is
re-encrypted, and old keys are retired only after every store was rewritten. Until then
both keys decrypt (MultiFernet), so an interrupted rotation leaves everything readable,
and running it again resumes it without making yet another key.

The rotation is audited before it starts (``key_rotation``, action ``rotate_begin``): when
that event cannot be written nothing is rotated. Its outcome follows as a second event
(action ``rotate``, successful or not).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from xnai.domain.keys import KeyInfo, KeyState, Reencryptable, RotatableKeyRing
from xnai.domain.ports import AuditSink
from xnai.services.audit import log_follow_up, record_first


@dataclass(frozen=True, slots=True)
class RotationReport:
    """What one rotation did."""

    key_id: str  # the current key after the rotation
    resumed: bool  # an interrupted rotation was completed (no new key made)
    retired: tuple[str, ...]  # key ids taken off the ring
    still_configured: tuple[str, ...]  # old keys the operator must remove (environment)
    rewritten: dict[str, int] = field(default_factory=dict)  # store name -> items


@dataclass(frozen=True, slots=True)
class KeyStatus:
    """What ``xnai keys status`` shows: ids, states and ages, never key material."""

    source: str
    encryption_enabled: bool
    keys: tuple[KeyInfo, ...]
    max_age_days: int

    @property
    def current(self) -> KeyInfo:
        """The key that encrypts new data."""
        return next(k for k in self.keys if k.state is KeyState.CURRENT)

    @property
    def rotation_pending(self) -> bool:
        """True when previous keys are still on the ring (a rotation did not finish)."""
        return any(k.state is KeyState.PREVIOUS for k in self.keys)

    def age_days(self, now: datetime | None = None) -> float | None:
        """Age of the current key in days (None when its creation time is unknown)."""
        created = self.current.created_at
        if created is None:
            return None
        return ((now or datetime.now(UTC)) - created).total_seconds() / 86400

    @property
    def too_old(self) -> bool:
        """True when the current key is older than the allowed age."""
        age = self.age_days()
        return age is not None and age > self.max_age_days


class KeyRotation:
    """Rotates the master key under the index writer lock, so no ingest runs meanwhile."""

    def __init__(
        self,
        keyring: RotatableKeyRing,
        stores: Sequence[Reencryptable],
        lock: Callable[[], AbstractContextManager[None]],
        audit: AuditSink,
        *,
        max_age_days: int = 365,
    ) -> None:
        self.keyring = keyring
        self.stores = stores
        self._lock = lock
        self.audit = audit
        self.max_age_days = max_age_days

    def status(self) -> KeyStatus:
        """Key ids, states and ages."""
        return KeyStatus(
            self.keyring.source,
            self.keyring.enabled,
            tuple(self.keyring.list_keys()),
            self.max_age_days,
        )

    def rotate(self, *, user_id: str | None = None) -> RotationReport:
        """Make a new key current (or resume an unfinished rotation), re-encrypt every store
        and retire the old keys; audited whether it succeeds or fails."""
        with self._lock():
            resumed = self._pending()
            from_key = self._current_or_none()
            self._audit(record_first, "rotate_begin", user_id, resumed=resumed, from_key=from_key)
            try:
                key_id = self._current_id() if resumed else self.keyring.add_key().key_id
                rewritten = {s.name: s.reencrypt() for s in self.stores}
                retired = tuple(self.keyring.retire_previous())
            except Exception as exc:
                self._audit_failure(exc, user_id)
                raise
        report = RotationReport(key_id, resumed, retired, tuple(self._previous()), rewritten)
        self._audit(
            log_follow_up,
            "rotate",
            user_id,
            key_id=report.key_id,
            resumed=report.resumed,
            retired=list(report.retired),
            still_configured=list(report.still_configured),
            rewritten=dict(report.rewritten),
        )
        return report

    def _pending(self) -> bool:
        return bool(self._previous())

    def _previous(self) -> list[str]:
        return [k.key_id for k in self.keyring.list_keys() if k.state is KeyState.PREVIOUS]

    def _current_id(self) -> str:
        return next(k.key_id for k in self.keyring.list_keys() if k.state is KeyState.CURRENT)

    def _current_or_none(self) -> str | None:
        current = (k.key_id for k in self.keyring.list_keys() if k.state is KeyState.CURRENT)
        return next(current, None)

    def _audit_failure(self, exc: Exception, user_id: str | None) -> None:
        error = f"{type(exc).__name__}: {exc}"
        self._audit(log_follow_up, "rotate", user_id, success=False, error=error)

    def _audit(
        self,
        write: Callable[..., None],
        action: str,
        user_id: str | None,
        *,
        success: bool = True,
        **details: Any,
    ) -> None:
        """One ``key_rotation`` event on the master key, written by ``write``."""
        write(
            self.audit,
            "key_rotation",
            action=action,
            resource="master_key",
            user_id=user_id,
            success=success,
            severity="info" if success else "error",
            details=details,
        )
