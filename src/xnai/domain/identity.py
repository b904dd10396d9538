"""Users, sessions, API keys and login attempts: the records and the ports that store them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from xnai.domain.rbac import Principal, Role

Clock = Callable[[], datetime]
"""Returns the current time as an aware UTC datetime (injectable so tests move time)."""

API_KEY_PREFIX = "xnai_"


@dataclass(frozen=True, slots=True)
class User:
    """An account. ``username`` is stored lower-case; ``mfa_secret`` is encrypted when a key
    ring is configured."""

    user_id: str
    username: str
    role: Role
    password_hash: str
    created_at: datetime
    password_changed_at: datetime
    enabled: bool = True
    mfa_secret: bytes | None = None
    mfa_enrolled: bool = False
    mfa_last_step: int | None = None


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A login session; only the hash of its secret is stored."""

    session_id: str
    user_id: str
    secret_hash: str
    created_at: datetime
    last_seen_at: datetime
    revoked_at: datetime | None = None
    source_ip: str | None = None


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """A per-user API key for programs; only the hash of its secret is stored."""

    key_id: str
    user_id: str
    name: str
    secret_hash: str
    created_at: datetime
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        """Not revoked and not expired at ``now``."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True, slots=True)
class Attempt:
    """The outcome of reserving a login attempt for a name.

    ``allowed`` is False while the name is locked; ``failures`` counts this attempt too.
    """

    allowed: bool
    failures: int
    locked_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class FailureWindow:
    """Failed logins counted under one key (a client, or everyone) since some time."""

    count: int
    oldest: datetime | None = None


@dataclass(frozen=True, slots=True)
class Authenticated:
    """A verified credential: the principal, and whether it may only enrol in MFA."""

    principal: Principal
    restricted: bool = False


@dataclass(frozen=True, slots=True)
class LoginResult:
    """A new session: the token is shown to the caller once and never stored."""

    token: str
    session: SessionRecord
    user: User
    mfa_enrolment_required: bool = False


@runtime_checkable
class PasswordHasher(Protocol):
    """A slow, salted password hash (argon2id)."""

    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str, password: str) -> bool:
        """True when ``password`` matches; False otherwise (never raises for a mismatch)."""
        ...

    def needs_rehash(self, password_hash: str) -> bool:
        """The hash was made with weaker parameters than the current ones."""
        ...


@runtime_checkable
class OneTimeCodes(Protocol):
    """Time-based one-time codes (TOTP, RFC 6238)."""

    def new_secret(self) -> str: ...

    def provisioning_uri(self, secret: str, account: str, issuer: str) -> str:
        """The ``otpauth://`` URI an authenticator app reads (usually as a QR code)."""
        ...

    def matching_step(self, secret: str, code: str, at: datetime) -> int | None:
        """The time step ``code`` belongs to (one step of clock drift allowed), else None."""
        ...


@runtime_checkable
class UserRepository(Protocol):
    """Durable storage of users, sessions, API keys and failed-login counters."""

    def add_user(self, user: User) -> None:
        """Insert; raise ConflictError when the username is taken."""
        ...

    def user(self, user_id: str) -> User | None: ...

    def user_by_name(self, username: str) -> User | None: ...

    def users(self) -> list[User]:
        """Every user, by username."""
        ...

    def count_users(self) -> int: ...

    def set_role(self, user_id: str, role: Role) -> bool:
        """Change the role unless that leaves no enabled admin; False when refused."""
        ...

    def set_enabled(self, user_id: str, enabled: bool) -> bool:
        """Enable or disable unless that leaves no enabled admin; False when refused."""
        ...

    def set_password(self, user_id: str, password_hash: str, changed_at: datetime) -> None: ...

    def set_mfa(self, user_id: str, secret: bytes | None, enrolled: bool) -> None:
        """Store a (pending or confirmed) TOTP secret, or clear it with None."""
        ...

    def replace_mfa_secret(self, user_id: str, secret: bytes) -> None:
        """Rewrite a stored secret (re-encrypted under a new key), nothing else."""
        ...

    def use_totp_step(self, user_id: str, step: int) -> bool:
        """Atomically record ``step`` as used; False when it (or a later one) was used."""
        ...

    def add_session(self, session: SessionRecord) -> None: ...

    def session(self, session_id: str) -> SessionRecord | None: ...

    def touch_session(self, session_id: str, at: datetime) -> None: ...

    def revoke_session(self, session_id: str, at: datetime) -> bool:
        """Revoke one session; False when it was unknown or already revoked."""
        ...

    def revoke_credentials(self, user_id: str, at: datetime) -> int:
        """Revoke every session and API key of the user; return how many were active."""
        ...

    def purge_sessions(self, before: datetime) -> int:
        """Delete sessions last used before ``before``; return how many went."""
        ...

    def add_api_key(self, key: ApiKeyRecord) -> None: ...

    def api_key(self, key_id: str) -> ApiKeyRecord | None: ...

    def api_keys(self, user_id: str) -> list[ApiKeyRecord]: ...

    def touch_api_key(self, key_id: str, at: datetime) -> None: ...

    def revoke_api_key(self, key_id: str, at: datetime) -> bool: ...

    def delete_user(self, user_id: str, name_key: str) -> bool:
        """Delete the user, their sessions, keys and failure count; False for the last
        enabled admin or an unknown id."""
        ...

    def sessions_of(self, user_id: str) -> list[SessionRecord]:
        """Every stored session of a user."""
        ...

    def begin_attempt(
        self, name_key: str, now: datetime, threshold: int, lock_seconds: int
    ) -> Attempt:
        """Atomically count one login attempt for ``name_key`` unless it is locked.

        The attempt that brings the count to ``threshold`` locks the name until
        ``now + lock_seconds`` (a success clears it); an expired lock starts a new count.
        """
        ...

    def release_attempt(self, name_key: str, threshold: int) -> None:
        """Take back one counted attempt that turned out not to be a failure."""
        ...

    def clear_failures(self, name_key: str) -> None:
        """A successful login or an admin unlock: the count and the lock go."""
        ...

    def failure_state(self, name_key: str) -> Attempt:
        """Current count and lock, without counting anything."""
        ...

    def note_failures(self, keys: Sequence[str], at: datetime) -> None:
        """Record one failed login at ``at`` under each key (a client's, the global one)."""
        ...

    def failures_since(self, key: str, since: datetime) -> FailureWindow:
        """How many failures were noted under ``key`` after ``since``, and the oldest."""
        ...

    def purge_failures(self, before: datetime, now: datetime) -> int:
        """Forget failures noted before ``before`` and name counts last changed before it
        unless locked at ``now``; return how many records went."""
        ...

    def close(self) -> None: ...
