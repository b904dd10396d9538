"""In-memory identity adapters: a user repository, a fast password hash, TOTP codes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import os
import struct
import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode

from xnai.domain.errors import ConflictError
from xnai.domain.identity import ApiKeyRecord, Attempt, FailureWindow, SessionRecord, User
from xnai.domain.rbac import Role

_EPOCH = datetime.fromtimestamp(0, UTC)
_Failures = tuple[int, datetime | None, datetime]  # count, locked until, last changed


class MemoryUserRepository:
    """Users, sessions, API keys and failure counters in dicts behind one lock, so every
    guarded change (the last enabled admin, a used TOTP step) is atomic."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._users: dict[str, User] = {}
        self._sessions: dict[str, SessionRecord] = {}
        self._keys: dict[str, ApiKeyRecord] = {}
        self._failures: dict[str, _Failures] = {}
        self._noted: dict[str, list[datetime]] = {}  # failure times per client or global key

    # users ------------------------------------------------------------------

    def add_user(self, user: User) -> None:
        """Insert; ConflictError when the username (or id) is taken."""
        with self._lock:
            if user.user_id in self._users or self.user_by_name(user.username) is not None:
                raise ConflictError(f"the username {user.username!r} is taken")
            self._users[user.user_id] = user

    def user(self, user_id: str) -> User | None:
        """A user by id."""
        return self._users.get(user_id)

    def user_by_name(self, username: str) -> User | None:
        """A user by (lower-case) name."""
        with self._lock:
            return next((u for u in self._users.values() if u.username == username), None)

    def users(self) -> list[User]:
        """Every user, by name."""
        with self._lock:
            return sorted(self._users.values(), key=lambda u: u.username)

    def count_users(self) -> int:
        """How many users exist."""
        return len(self._users)

    def set_role(self, user_id: str, role: Role) -> bool:
        """Change the role unless it removes the last enabled admin."""
        return self._guarded(user_id, role is Role.ADMIN, role=role)

    def set_enabled(self, user_id: str, enabled: bool) -> bool:
        """Enable or disable unless it removes the last enabled admin."""
        return self._guarded(user_id, enabled, enabled=enabled)

    def set_password(self, user_id: str, password_hash: str, changed_at: datetime) -> None:
        """Store a new password hash."""
        self._update(user_id, password_hash=password_hash, password_changed_at=changed_at)

    def set_mfa(self, user_id: str, secret: bytes | None, enrolled: bool) -> None:
        """Store or clear the TOTP secret; a new secret starts with no used step."""
        self._update(user_id, mfa_secret=secret, mfa_enrolled=enrolled, mfa_last_step=None)

    def replace_mfa_secret(self, user_id: str, secret: bytes) -> None:
        """Rewrite the stored secret only (a key rotation)."""
        self._update(user_id, mfa_secret=secret)

    def use_totp_step(self, user_id: str, step: int) -> bool:
        """Record ``step`` as used unless it or a later step already was."""
        with self._lock:
            user = self._users.get(user_id)
            if user is None or (user.mfa_last_step is not None and user.mfa_last_step >= step):
                return False
            self._users[user_id] = replace(user, mfa_last_step=step)
            return True

    def delete_user(self, user_id: str, name_key: str) -> bool:
        """Delete a user with their sessions, keys and failure count; False for the last
        enabled admin or an unknown id."""
        with self._lock:
            user = self._users.get(user_id)
            if user is None or self._last_admin(user):
                return False
            del self._users[user_id]
            for table in (self._sessions, self._keys):
                for key in [k for k, v in table.items() if v.user_id == user_id]:
                    del table[key]
            self._failures.pop(name_key, None)
            return True

    # sessions and API keys ----------------------------------------------------

    def add_session(self, session: SessionRecord) -> None:
        """Store a new session."""
        with self._lock:
            self._sessions[session.session_id] = session

    def session(self, session_id: str) -> SessionRecord | None:
        """A session by id."""
        return self._sessions.get(session_id)

    def touch_session(self, session_id: str, at: datetime) -> None:
        """Record activity (never moves the last use back)."""
        with self._lock:
            found = self._sessions.get(session_id)
            if found is not None and found.last_seen_at < at:
                self._sessions[session_id] = replace(found, last_seen_at=at)

    def revoke_session(self, session_id: str, at: datetime) -> bool:
        """Revoke one session; False when unknown or already revoked."""
        with self._lock:
            found = self._sessions.get(session_id)
            if found is None or found.revoked_at is not None:
                return False
            self._sessions[session_id] = replace(found, revoked_at=at)
            return True

    def revoke_credentials(self, user_id: str, at: datetime) -> int:
        """Revoke every session and API key of a user; return how many were active."""
        with self._lock:
            sessions = [s for s in self._sessions.values() if _active_of(s, user_id)]
            keys = [k for k in self._keys.values() if _active_of(k, user_id)]
            for s in sessions:
                self._sessions[s.session_id] = replace(s, revoked_at=at)
            for k in keys:
                self._keys[k.key_id] = replace(k, revoked_at=at)
        return len(sessions) + len(keys)

    def purge_sessions(self, before: datetime) -> int:
        """Delete sessions not used since ``before`` (and those revoked before it)."""
        with self._lock:
            doomed = [
                s.session_id
                for s in self._sessions.values()
                if s.last_seen_at < before or (s.revoked_at is not None and s.revoked_at < before)
            ]
            for session_id in doomed:
                del self._sessions[session_id]
        return len(doomed)

    def sessions_of(self, user_id: str) -> list[SessionRecord]:
        """Every stored session of a user, newest first."""
        with self._lock:
            mine = [s for s in self._sessions.values() if s.user_id == user_id]
        return sorted(mine, key=lambda s: s.created_at, reverse=True)

    def add_api_key(self, key: ApiKeyRecord) -> None:
        """Store a new API key."""
        with self._lock:
            self._keys[key.key_id] = key

    def api_key(self, key_id: str) -> ApiKeyRecord | None:
        """An API key by id."""
        return self._keys.get(key_id)

    def api_keys(self, user_id: str) -> list[ApiKeyRecord]:
        """A user's API keys, oldest first."""
        with self._lock:
            mine = [k for k in self._keys.values() if k.user_id == user_id]
        return sorted(mine, key=lambda k: (k.created_at, k.key_id))

    def touch_api_key(self, key_id: str, at: datetime) -> None:
        """Record when a key was last used."""
        with self._lock:
            found = self._keys.get(key_id)
            if found is not None:
                self._keys[key_id] = replace(found, last_used_at=at)

    def revoke_api_key(self, key_id: str, at: datetime) -> bool:
        """Revoke one API key; False when unknown or already revoked."""
        with self._lock:
            found = self._keys.get(key_id)
            if found is None or found.revoked_at is not None:
                return False
            self._keys[key_id] = replace(found, revoked_at=at)
            return True

    # failed logins --------------------------------------------------------------

    def begin_attempt(
        self, name_key: str, now: datetime, threshold: int, lock_seconds: int
    ) -> Attempt:
        """Count one attempt unless the name is locked; the threshold-th one locks it."""
        with self._lock:
            failures, locked, _ = self._failures.get(name_key, (0, None, now))
            expired = locked is not None and locked <= now
            if locked is not None and not expired:
                return Attempt(False, failures, locked)
            count = 1 if expired else failures + 1
            until = now + timedelta(seconds=lock_seconds) if count >= threshold else None
            self._failures[name_key] = (count, until, now)
            return Attempt(True, count, until)

    def release_attempt(self, name_key: str, threshold: int) -> None:
        """Uncount one attempt (and lift a lock it caused)."""
        with self._lock:
            failures, locked, changed = self._failures.get(name_key, (0, None, _EPOCH))
            if failures > 0:
                self._failures[name_key] = (
                    failures - 1,
                    None if failures - 1 < threshold else locked,
                    changed,
                )

    def clear_failures(self, name_key: str) -> None:
        """Forget the count and the lock."""
        with self._lock:
            self._failures.pop(name_key, None)

    def failure_state(self, name_key: str) -> Attempt:
        """The count and lock; ``allowed`` is True when no lock is recorded."""
        failures, locked, _ = self._failures.get(name_key, (0, None, _EPOCH))
        return Attempt(locked is None, failures, locked)

    def note_failures(self, keys: Sequence[str], at: datetime) -> None:
        """Record one failure under each key."""
        with self._lock:
            for key in keys:
                self._noted.setdefault(key, []).append(at)

    def failures_since(self, key: str, since: datetime) -> FailureWindow:
        """Failures under ``key`` after ``since``."""
        with self._lock:
            times = [t for t in self._noted.get(key, []) if t > since]
        return FailureWindow(len(times), min(times) if times else None)

    def purge_failures(self, before: datetime, now: datetime) -> int:
        """Forget old failure times and old, unlocked name counts."""
        with self._lock:
            gone = 0
            for key, times in list(self._noted.items()):
                kept = [t for t in times if t >= before]
                gone += len(times) - len(kept)
                if kept:
                    self._noted[key] = kept
                else:
                    del self._noted[key]
            for key, (_, locked, changed) in list(self._failures.items()):
                if changed < before and (locked is None or locked <= now):
                    del self._failures[key]
                    gone += 1
            return gone

    def close(self) -> None:
        """Nothing to release."""

    # helpers --------------------------------------------------------------------

    def _update(self, user_id: str, **values: object) -> None:
        with self._lock:
            found = self._users.get(user_id)
            if found is not None:
                self._users[user_id] = replace(found, **values)  # type: ignore[arg-type]

    def _guarded(self, user_id: str, stays_admin: bool, **values: object) -> bool:
        with self._lock:
            found = self._users.get(user_id)
            if found is None or (not stays_admin and self._last_admin(found)):
                return False
            self._users[user_id] = replace(found, **values)  # type: ignore[arg-type]
            return True

    def _last_admin(self, user: User) -> bool:
        """Whether ``user`` is the only enabled admin."""
        if user.role is not Role.ADMIN or not user.enabled:
            return False
        return not any(
            u.role is Role.ADMIN and u.enabled and u.user_id != user.user_id
            for u in self._users.values()
        )


def _active_of(item: SessionRecord | ApiKeyRecord, user_id: str) -> bool:
    return item.user_id == user_id and item.revoked_at is None


class FastPasswordHasher:
    """Salted PBKDF2-HMAC-SHA256 with few iterations: a real hash that keeps tests quick.

    Never for production: argon2id is what the service wires."""

    PREFIX = "pbkdf2_sha256"

    def __init__(self, iterations: int = 1000) -> None:
        self.iterations = iterations

    def hash(self, password: str) -> str:
        """``pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>``."""
        salt = os.urandom(16)
        digest = self._digest(password, salt, self.iterations)
        return f"{self.PREFIX}${self.iterations}${salt.hex()}${digest.hex()}"

    def verify(self, password_hash: str, password: str) -> bool:
        """True when ``password`` matches; a mismatch or an unreadable hash is False."""
        parts = _parts(password_hash)
        if parts is None:
            return False
        iterations, salt, digest = parts
        return hmac.compare_digest(self._digest(password, salt, iterations), digest)

    def needs_rehash(self, password_hash: str) -> bool:
        """The hash is unreadable or made with another iteration count."""
        parts = _parts(password_hash)
        return parts is None or parts[0] != self.iterations

    @staticmethod
    def _digest(password: str, salt: bytes, iterations: int) -> bytes:
        return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)


def _parts(password_hash: str) -> tuple[int, bytes, bytes] | None:
    prefix, _, rest = password_hash.partition("$")
    fields = rest.split("$")
    if prefix != FastPasswordHasher.PREFIX or len(fields) != 3 or not fields[0].isdigit():
        return None
    try:
        return int(fields[0]), bytes.fromhex(fields[1]), bytes.fromhex(fields[2])
    except ValueError:
        return None


class PlainTotpCodes:
    """RFC 6238 codes (HMAC-SHA1, six digits, 30-second steps, one step of drift) in plain
    Python; secrets come from a counter, so a test run is reproducible."""

    def __init__(
        self, seed: str = "xnai", *, digits: int = 6, interval: int = 30, drift_steps: int = 1
    ) -> None:
        self.digits = digits
        self.interval = interval
        self.drift_steps = drift_steps
        self._seed = seed
        self._counter = itertools.count(1)

    def new_secret(self) -> str:
        """A base32 secret of 160 bits, the next one of this seed."""
        raw = hashlib.sha1(f"{self._seed}:{next(self._counter)}".encode()).digest()
        return base64.b32encode(raw).decode("ascii")

    def provisioning_uri(self, secret: str, account: str, issuer: str) -> str:
        """The ``otpauth://totp/...`` URI for an authenticator app."""
        query = urlencode({"secret": secret, "issuer": issuer})
        return f"otpauth://totp/{quote(issuer)}:{quote(account)}?{query}"

    def code_at(self, secret: str, at: datetime) -> str:
        """The code valid at ``at``."""
        return self._code(secret, self._step(at))

    def matching_step(self, secret: str, code: str, at: datetime) -> int | None:
        """The time step whose code equals ``code``, checking every allowed step alike."""
        code = code.replace(" ", "")
        if len(code) != self.digits or not code.isdigit():
            return None
        now, found = self._step(at), None
        for step in range(now - self.drift_steps, now + self.drift_steps + 1):
            if hmac.compare_digest(self._code(secret, step), code):
                found = step
        return found

    def _step(self, at: datetime) -> int:
        return int(at.timestamp()) // self.interval

    def _code(self, secret: str, step: int) -> str:
        key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
        mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
        offset = mac[-1] & 0x0F
        value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
        return str(value % 10**self.digits).zfill(self.digits)
