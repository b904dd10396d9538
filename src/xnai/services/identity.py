"""The shared core of authentication and user management: policy, state and helpers."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Unpack

from xnai.domain.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from xnai.domain.identity import (
    Authenticated,
    Clock,
    OneTimeCodes,
    PasswordHasher,
    User,
    UserRepository,
)
from xnai.domain.ports import AuditSink, EventFields, KeyRing
from xnai.domain.rbac import Permission, Principal, Role
from xnai.services.audit import audited, log_follow_up

INVALID_LOGIN = "invalid username or password"
INVALID_TOKEN = "invalid, expired or revoked credentials: log in again"
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")
MAX_PASSWORD = 1024
SECRET_CONTEXT = "user_data"


def utc_now() -> datetime:
    """The real clock."""
    return datetime.now(UTC)


def token_digest(secret: str) -> str:
    """sha256 of a high-entropy secret: what the database keeps instead of the secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def name_key(username: str) -> str:
    """The key failed logins are counted under: a hash of the normalised name."""
    return hashlib.sha256(normalise(username).encode()).hexdigest()


GLOBAL_KEY = "*"


def client_key(source_ip: str | None) -> str | None:
    """The key a client's failed logins are counted under: a digest of its address, of the
    /64 network for IPv6 (one host holds a whole /64); None without an address."""
    if not source_ip:
        return None
    try:
        address = ipaddress.ip_address(source_ip)
    except ValueError:
        label = source_ip
    else:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if isinstance(address, ipaddress.IPv6Address):
            label = str(ipaddress.ip_network(f"{address}/64", strict=False))
        else:
            label = str(address)
    return hashlib.sha256(f"client:{label}".encode()).hexdigest()


def normalise(username: str) -> str:
    """Usernames are case-insensitive."""
    return username.strip().lower()


def random_password() -> str:
    """A generated password (120 random bits, 20 URL-safe characters)."""
    return secrets.token_urlsafe(15)


CONTEXT_WORDS = ("xoe-novai", "xoenovai", "xnai", "novai")


@dataclass(frozen=True, slots=True)
class AuthPolicy:
    """The ``enterprise.security`` settings that govern authentication."""

    session_timeout: int = 28800
    session_idle_timeout: int = 1800
    failed_login_lockout: int = 5
    lockout_duration: int = 900
    password_min_length: int = 12
    mfa_required: bool = False
    issuer: str = "Xoe-NovAi"
    touch_every: int = 30  # seconds between writes of a session's last use
    login_window: int = 900  # seconds of the sliding window failed logins are counted in
    login_client_failures: int = 20  # per client address (IPv6: per /64) in the window
    login_global_failures: int = 500  # over every client in the window
    # Words of this installation a password must not be built on (with the issuer's name).
    context_words: tuple[str, ...] = CONTEXT_WORDS

    def words(self, username: str) -> set[str]:
        """The context words, letters only and in lower case, with the username's."""
        return {w for w in (_letters(x) for x in (*self.context_words, self.issuer, username)) if w}


def _letters(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalpha())


@dataclass(frozen=True, slots=True)
class UserSummary:
    """What an admin sees about a user (no secrets)."""

    user_id: str
    username: str
    role: Role
    enabled: bool
    created_at: datetime
    password_changed_at: datetime
    mfa_enrolled: bool
    locked_until: datetime | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (what the API, the command line and exports show)."""
        return {
            "user_id": self.user_id,
            "username": self.username,
            "role": self.role.value,
            "enabled": self.enabled,
            "created_at": self.created_at.isoformat(),
            "password_changed_at": self.password_changed_at.isoformat(),
            "mfa_enrolled": self.mfa_enrolled,
            "locked_until": self.locked_until.isoformat() if self.locked_until else None,
        }


class IdentityCore:
    """The repository, hasher, clock, audit sink and key ring, and what both halves share."""

    def __init__(
        self,
        repo: UserRepository,
        hasher: PasswordHasher,
        codes: OneTimeCodes,
        *,
        policy: AuthPolicy | None = None,
        audit: AuditSink | None = None,
        clock: Clock = utc_now,
        keyring: KeyRing | None = None,
        is_common: Callable[[str], bool] = lambda _: False,
    ) -> None:
        self.repo = repo
        self.codes = codes
        self.policy = policy or AuthPolicy()
        self.audit = audit
        self.clock = clock
        self.keyring = keyring
        self.is_common = is_common
        self._hasher = hasher
        self._dummy: str | None = None
        self._lock = threading.Lock()
        # password hash, username, guesses -> whether a default password opens the account
        self._default_verdicts: dict[tuple[str, str, tuple[str, ...]], bool] = {}
        # digest of a token -> (what it authenticated as, when): see AuthService.authenticate
        self._verified: dict[str, tuple[Authenticated, datetime]] = {}

    @property
    def sealed_secrets(self) -> SealedMfaSecrets:
        """The TOTP secrets as a re-encryptable store (for key rotation)."""
        return SealedMfaSecrets(self.repo, self.keyring)

    @property
    def hasher(self) -> PasswordHasher:
        """The password hasher (replaceable; the dummy hash follows it)."""
        return self._hasher

    @hasher.setter
    def hasher(self, hasher: PasswordHasher) -> None:
        self._hasher = hasher
        self._dummy = None

    def check_password(self, password: str, username: str) -> None:
        """Refuse short, listed (common or breached), username-equal passwords and those made
        of a context word (product, organisation, username) plus digits or symbols."""
        minimum = self.policy.password_min_length
        if len(password) < minimum:
            raise InvalidInputError(f"the password needs at least {minimum} characters")
        if len(password) > MAX_PASSWORD:
            raise InvalidInputError(f"the password has more than {MAX_PASSWORD} characters")
        if password.strip().lower() == normalise(username):
            raise InvalidInputError("the password must not be the username")
        if _letters(password) in self.policy.words(username):
            raise InvalidInputError(
                "the password is the product, organisation or user name with digits or "
                "symbols added: choose another"
            )
        if self.is_common(password):
            raise InvalidInputError(
                "the password is on the list of common or breached passwords: choose another"
            )

    def me(self, principal: Principal) -> UserSummary:
        """The principal's own account."""
        return self._summary(self._existing(principal.user_id))

    def _existing(self, user_id: str) -> User:
        user = self.repo.user(user_id)
        if user is None:
            raise NotFoundError("no such user")
        return user

    def user_id_of(self, ref: str) -> str | None:
        """The user id of the account named by user id or username; None when unknown."""
        user = self.repo.user_by_name(normalise(ref)) or self.repo.user(ref.strip())
        return user.user_id if user is not None else None

    def _target(self, ref: str) -> User:
        user = self.repo.user_by_name(normalise(ref)) or self.repo.user(ref.strip())
        if user is None:
            raise NotFoundError(f"no user {ref!r}")
        return user

    def _summary(self, user: User) -> UserSummary:
        state = self.repo.failure_state(name_key(user.username))
        locked = (
            state.locked_until if state.locked_until and state.locked_until > self.clock() else None
        )
        return UserSummary(
            user.user_id,
            user.username,
            user.role,
            user.enabled,
            user.created_at,
            user.password_changed_at,
            user.mfa_enrolled,
            locked,
        )

    def _replace_password(
        self, user: User, new: str, event: tuple[str, str], actor: Principal, now: datetime
    ) -> None:
        new_hash = self.hasher.hash(new)
        with self._changing(actor, user, *event):
            self.repo.set_password(user.user_id, new_hash, now)
            self._revoke_all(user, actor, event[0])

    def _revoke_all(self, user: User, actor: Principal, reason: str) -> None:
        """Revoke every credential of ``user``: part of an action whose event was written
        first; the count follows as a ``session_revoked`` event."""
        self._verified.clear()
        n = self.repo.revoke_credentials(user.user_id, self.clock())
        if n and self.audit is not None:
            log_follow_up(
                self.audit,
                "session_revoked",
                action="revoke_credentials",
                user_id=actor.user_id,
                resource=f"user:{user.username}",
                details={"count": n, "reason": reason},
            )

    def _changing(
        self,
        actor: Principal,
        user: User,
        event_type: str,
        action: str,
        *,
        severity: str = "info",
        details: dict[str, Any] | None = None,
    ) -> AbstractContextManager[None]:
        """``_audited`` for a change ``actor`` makes to the account of ``user``."""
        return self._audited(
            event_type,
            action=action,
            user_id=actor.user_id,
            resource=f"user:{user.username}",
            severity=severity,
            details=details,
        )

    @contextmanager
    def _audited(self, event_type: str, **fields: Unpack[EventFields]) -> Iterator[None]:
        """The change in the block is made only after its event was written (see
        ``audited``); verified credentials are forgotten before and after it."""
        self._verified.clear()
        try:
            with audited(self.audit, event_type, **fields):
                yield
        finally:
            self._verified.clear()

    def _event(self, event_type: str, **fields: Unpack[EventFields]) -> None:
        # Every change to users and credentials is an event: none may be served from the
        # cache of verified credentials afterwards.
        self._verified.clear()
        if self.audit is not None:
            self.audit.record(event_type, **fields)

    @staticmethod
    def _manages(principal: Principal) -> bool:
        return principal.can(Permission.MANAGE_USERS)

    def _require_manager(self, actor: Principal) -> None:
        if not self._manages(actor):
            raise PermissionDeniedError("managing users needs the manage:users permission")

    @staticmethod
    def _check_grant(actor: Principal, role: Role) -> None:
        if role is Role.SYSTEM and actor.via != "local":
            raise PermissionDeniedError("the system role is granted on the command line only")


class SealedMfaSecrets:
    """The users' TOTP secrets as a store the key rotation re-encrypts."""

    name = "mfa_secrets"

    def __init__(self, repo: UserRepository, keyring: KeyRing | None) -> None:
        self.repo = repo
        self.keyring = keyring

    def reencrypt(self) -> int:
        """Re-seal every stored secret under the current key; return how many."""
        if self.keyring is None:
            return 0
        n = 0
        for user in self.repo.users():
            if user.mfa_secret is not None:
                plain = self.keyring.decrypt(SECRET_CONTEXT, user.mfa_secret)
                self.repo.replace_mfa_secret(
                    user.user_id, self.keyring.encrypt(SECRET_CONTEXT, plain)
                )
                n += 1
        return n


def same_digest(stored_hash: str, secret: str) -> bool:
    """Constant-time comparison of a stored digest with the digest of ``secret``."""
    return hmac.compare_digest(stored_hash, token_digest(secret))
