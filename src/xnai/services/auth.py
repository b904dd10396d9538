"""Identity and access: users, passwords, sessions, API keys, lockout and TOTP.

Every login path (HTTP, a user interface, the command line) goes through ``AuthService.login``,
so lockout and MFA apply alike everywhere. Secrets (passwords, tokens, codes) never reach the
audit trail or the database in clear: passwords are argon2id hashes, tokens sha256 hashes of
256-bit random values, TOTP secrets are sealed with the key ring's ``user_data`` key.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from xnai.domain.errors import (
    AccountLockedError,
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    LoginThrottledError,
    MfaRequiredError,
    NotFoundError,
    PermissionDeniedError,
)
from xnai.domain.identity import (
    API_KEY_PREFIX,
    ApiKeyRecord,
    Attempt,
    Authenticated,
    FailureWindow,
    LoginResult,
    SessionRecord,
    User,
)
from xnai.domain.rbac import Principal
from xnai.services.identity import (
    GLOBAL_KEY,
    INVALID_LOGIN,
    INVALID_TOKEN,
    SECRET_CONTEXT,
    AuthPolicy,
    UserSummary,
    client_key,
    name_key,
    normalise,
    same_digest,
    token_digest,
    utc_now,
)
from xnai.services.users import UserAdmin

__all__ = ["AuthPolicy", "AuthService", "UserSummary", "utc_now"]

AUTH_CACHE_SECONDS = 1.0
CACHE_FOR = timedelta(seconds=AUTH_CACHE_SECONDS)
CACHE_MAX = 10_000  # verified credentials remembered at most (then forgotten at once)


class AuthService(UserAdmin):
    """Logins, sessions, API keys, password changes and MFA, plus user management."""

    def login(
        self,
        username: str,
        password: str,
        totp_code: str | None = None,
        *,
        source_ip: str | None = None,
    ) -> LoginResult:
        """Check a password (and a code when enrolled) and open a session.

        Unknown names, wrong passwords and disabled accounts all fail the same way and are
        counted alike, so a caller cannot tell which names exist.
        """
        name, now = normalise(username), self.clock()
        key = name_key(name)
        clean = self._throttle(name, source_ip, now)
        attempt = self._begin(key, now)
        if not attempt.allowed and not clean:
            self._login_failed(None, name, source_ip, "locked", note=False)
            raise self._locked(attempt, now)
        # A locked name still lets a client with no failure in the window try (once: a
        # failure makes it a failing client), so one attacker cannot keep the owner out.
        counted = attempt if attempt.allowed else None
        user = self.repo.user_by_name(name)
        if not self._password_ok(user, password) or user is None or not user.enabled:
            self._login_failed(user, name, source_ip, "password", counted, now)
            raise AuthenticationError(INVALID_LOGIN)
        if user.mfa_enrolled:
            if not totp_code:
                if counted is not None:
                    self.repo.release_attempt(key, self.policy.failed_login_lockout)
                raise MfaRequiredError("a one-time code from your authenticator app is needed")
            if not self._use_code(user, totp_code, now):
                self._login_failed(user, name, source_ip, "one-time code", counted, now)
                raise MfaRequiredError("invalid or already used one-time code")
        self.repo.clear_failures(key)
        if self.hasher.needs_rehash(user.password_hash):
            new_hash = self.hasher.hash(password)
            self.repo.set_password(user.user_id, new_hash, user.password_changed_at)
        token, session = self._open_session(user, now, source_ip)
        self._event(
            "login_success",
            action="login",
            user_id=user.user_id,
            resource=f"user:{user.username}",
            source_ip=source_ip,
            details={"username": user.username, "session_id": session.session_id},
        )
        return LoginResult(token, session, user, self._must_enrol(user))

    def authenticate(self, token: str) -> Authenticated:
        """The principal behind a session token or an API key; AuthenticationError if none.

        A credential verified less than ``AUTH_CACHE_SECONDS`` ago is not looked up again;
        every change this service makes (logout, revocation, disabling, role or password
        change) empties that cache at once, and a change made by another process applies
        within that time.
        """
        hit = self.recently_verified(token)
        if hit is not None:
            return hit
        now, digest = self.clock(), token_digest(token)
        if token.startswith(API_KEY_PREFIX):
            user, principal = self._by_api_key(token, now)
        else:
            user, principal = self._by_session(token, now)
        verified = Authenticated(principal, restricted=self._must_enrol(user))
        if len(self._verified) >= CACHE_MAX:
            self._verified.clear()
        self._verified[digest] = (verified, now)
        return verified

    def recently_verified(self, token: str) -> Authenticated | None:
        """What ``token`` authenticated as, if verified less than ``AUTH_CACHE_SECONDS`` ago
        and nothing changed since: no database access (safe on an event loop)."""
        hit = self._verified.get(token_digest(token))
        if hit is not None and timedelta(0) <= self.clock() - hit[1] < CACHE_FOR:
            return hit[0]
        return None

    def logout(self, principal: Principal, *, source_ip: str | None = None) -> None:
        """End the session the principal authenticated with."""
        if principal.via != "session" or principal.credential_id is None:
            raise InvalidInputError(
                "logout ends a session; revoke an API key with DELETE /v1/auth/api-keys/{key_id}"
            )
        with self._audited(
            "logout",
            action="logout",
            user_id=principal.user_id,
            resource=f"session:{principal.credential_id}",
            source_ip=source_ip,
        ):
            self.repo.revoke_session(principal.credential_id, self.clock())

    def purge_sessions(self, now: datetime | None = None) -> int:
        """Delete sessions unused (or revoked) for a whole session lifetime before ``now``,
        so surely expired; return how many went. For the retention job."""
        now = now or self.clock()
        return self.repo.purge_sessions(now - timedelta(seconds=self.policy.session_timeout))

    def purge_login_failures(self, now: datetime | None = None) -> int:
        """Forget failed logins older than the throttling window and name counts not
        changed for as long (unless still locked); return how many records went."""
        now = now or self.clock()
        p = self.policy
        horizon = timedelta(seconds=max(p.login_window, p.lockout_duration))
        return self.repo.purge_failures(now - horizon, now)

    def purge_stale(self, now: datetime | None = None) -> int:
        """The retention job's share: old sessions (counted in the result) and old failed
        logins go."""
        self.purge_login_failures(now)
        return self.purge_sessions(now)

    def session_expires_at(self, session: SessionRecord) -> datetime:
        """When a session ends at the latest (absolute lifetime)."""
        return session.created_at + timedelta(seconds=self.policy.session_timeout)

    def create_api_key(
        self, principal: Principal, name: str, expires_at: datetime | None = None
    ) -> tuple[ApiKeyRecord, str]:
        """A new key for the principal's own user; the key is returned once."""
        name = name.strip()
        if not 1 <= len(name) <= 64:
            raise InvalidInputError("an API key name has 1 to 64 characters")
        now = self.clock()
        if expires_at is not None and expires_at <= now:
            raise InvalidInputError("an API key's expiry must be in the future")
        key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        record = ApiKeyRecord(
            key_id, principal.user_id, name, token_digest(secret), now, expires_at
        )
        with self._audited(
            "api_key_created",
            action="create_api_key",
            user_id=principal.user_id,
            resource=f"api_key:{key_id}",
            details={"name": name, "expires_at": expires_at.isoformat() if expires_at else None},
        ):
            self.repo.add_api_key(record)
        return record, f"{API_KEY_PREFIX}{key_id}_{secret}"

    def api_keys(self, principal: Principal) -> list[ApiKeyRecord]:
        """The principal's own keys."""
        return self.repo.api_keys(principal.user_id)

    def revoke_api_key(self, principal: Principal, key_id: str) -> None:
        """Revoke one of the principal's own keys (admins: anyone's)."""
        key = self.repo.api_key(key_id)
        if key is None or (key.user_id != principal.user_id and not self._manages(principal)):
            raise NotFoundError(f"no API key {key_id!r}")
        with self._audited(
            "api_key_revoked",
            action="revoke_api_key",
            user_id=principal.user_id,
            resource=f"api_key:{key_id}",
            details={"owner": key.user_id},
        ):
            self.repo.revoke_api_key(key_id, self.clock())

    def change_password(
        self, principal: Principal, current: str, new: str, *, source_ip: str | None = None
    ) -> None:
        """Change one's own password (the current one is needed; wrong ones count as failed
        logins); every session and API key of the user is revoked."""
        user = self._existing(principal.user_id)
        self._reauthenticate(user, current, source_ip)
        self.check_password(new, user.username)
        event = ("password_changed", "change_password")
        self._replace_password(user, new, event, principal, self.clock())

    def begin_mfa_enrolment(
        self, principal: Principal, password: str, *, source_ip: str | None = None
    ) -> tuple[str, str]:
        """A new TOTP secret and its ``otpauth://`` URI; confirm with a code to finish. The
        account's password is needed again (wrong ones count as failed logins), so a stolen
        session or API key alone cannot bind the account to somebody else's app."""
        user = self._existing(principal.user_id)
        self._reauthenticate(user, password, source_ip)
        if user.mfa_enrolled:
            raise ConflictError("MFA is already enrolled; an admin can reset it")
        secret = self.codes.new_secret()
        self.repo.set_mfa(user.user_id, self._seal(secret), enrolled=False)
        return secret, self.codes.provisioning_uri(secret, user.username, self.policy.issuer)

    def confirm_mfa_enrolment(self, principal: Principal, code: str) -> None:
        """Finish enrolment with a valid code from the authenticator app."""
        user = self._existing(principal.user_id)
        if user.mfa_enrolled:
            raise ConflictError("MFA is already enrolled")
        if user.mfa_secret is None:
            raise InvalidInputError("start MFA enrolment first (POST /v1/auth/mfa/enrol)")
        step = self.codes.matching_step(self._unseal(user.mfa_secret), code, self.clock())
        if step is None:
            raise InvalidInputError("the code does not match: check the app and the clock")
        with self._audited(
            "mfa_enrolled",
            action="enrol_mfa",
            user_id=user.user_id,
            resource=f"user:{user.username}",
        ):
            self.repo.set_mfa(user.user_id, user.mfa_secret, enrolled=True)
            self.repo.use_totp_step(user.user_id, step)

    def _reauthenticate(self, user: User, password: str, source_ip: str | None) -> None:
        """PermissionDeniedError (audited, counted toward the lockout) unless ``password``
        is the user's own."""
        now, key = self.clock(), name_key(user.username)
        attempt = self._begin(key, now)
        if not attempt.allowed:
            raise self._locked(attempt, now)
        if not self.hasher.verify(user.password_hash, password):
            self._login_failed(user, user.username, source_ip, "current password", attempt, now)
            raise PermissionDeniedError("the current password is wrong")
        self.repo.clear_failures(key)

    def _begin(self, key: str, now: datetime) -> Attempt:
        p = self.policy
        return self.repo.begin_attempt(key, now, p.failed_login_lockout, p.lockout_duration)

    def _throttle(self, name: str, source_ip: str | None, now: datetime) -> bool:
        """LoginThrottledError when the client, or everyone, failed too often within the
        window; otherwise whether the client has no failure in it (None: no address)."""
        p, client = self.policy, client_key(source_ip)
        since = now - timedelta(seconds=p.login_window)
        if client is not None:
            mine = self.repo.failures_since(client, since)
            if mine.count >= p.login_client_failures:
                raise self._throttled("client", mine, name, source_ip, now)
            if mine.count == 0:
                return True  # the global limit spares clients that have not failed
        everyone = self.repo.failures_since(GLOBAL_KEY, since)
        if everyone.count >= p.login_global_failures:
            raise self._throttled("global", everyone, name, source_ip, now)
        return False

    def _throttled(
        self, scope: str, seen: FailureWindow, name: str, source_ip: str | None, now: datetime
    ) -> LoginThrottledError:
        oldest = seen.oldest or now
        until = oldest + timedelta(seconds=self.policy.login_window)
        details = {"scope": scope, "failures": seen.count}
        self._refused_login("login_throttled", "login", None, name, source_ip, details)
        who = "from this address" if scope == "client" else "overall"
        return LoginThrottledError(
            f"too many failed logins {who}: try again later", retry_after=_seconds(until, now)
        )

    def _note_failure(self, source_ip: str | None, now: datetime) -> None:
        client = client_key(source_ip)
        keys = [GLOBAL_KEY] if client is None else [client, GLOBAL_KEY]
        self.repo.note_failures(keys, now)
        self.purge_login_failures(now)

    def _locked(self, attempt: Attempt, now: datetime) -> AccountLockedError:
        until = attempt.locked_until or now + timedelta(seconds=self.policy.lockout_duration)
        return AccountLockedError(
            "too many failed logins: try again later", retry_after=_seconds(until, now)
        )

    def _login_failed(
        self,
        user: User | None,
        name: str,
        source_ip: str | None,
        reason: str,
        attempt: Attempt | None = None,
        now: datetime | None = None,
        *,
        note: bool = True,
    ) -> None:
        """Audit a failure and count it for the throttles (``note``); raise
        AccountLockedError when this very failure locked the name."""
        uid = user.user_id if user else None
        if note:
            self._note_failure(source_ip, now or self.clock())
        self._refused_login("login_failure", "login", uid, name, source_ip, {"reason": reason})
        if attempt is not None and now is not None and attempt.locked_until is not None:
            details = {
                "failures": attempt.failures,
                "locked_until": attempt.locked_until.isoformat(),
            }
            self._refused_login("account_locked", "lock", uid, name, source_ip, details)
            raise self._locked(attempt, now)

    def _refused_login(
        self,
        event_type: str,
        action: str,
        user_id: str | None,
        name: str,
        source_ip: str | None,
        details: dict[str, Any],
    ) -> None:
        """Audit a login refused for the name typed (a warning; the name is personal data)."""
        self._event(
            event_type,
            action=action,
            user_id=user_id,
            resource=f"user:{name}",
            success=False,
            severity="warning",
            source_ip=source_ip,
            details={"username": name, **details},
        )

    def _password_ok(self, user: User | None, password: str) -> bool:
        # An unknown name is checked against a dummy hash: the same work, the same time.
        return self.hasher.verify(user.password_hash if user else self._dummy_hash(), password)

    def _dummy_hash(self) -> str:
        if self._dummy is None:
            with self._lock:
                if self._dummy is None:
                    self._dummy = self.hasher.hash(secrets.token_urlsafe(16))
        return self._dummy

    def _use_code(self, user: User, code: str, now: datetime) -> bool:
        if user.mfa_secret is None:
            return False
        step = self.codes.matching_step(self._unseal(user.mfa_secret), code, now)
        return step is not None and self.repo.use_totp_step(user.user_id, step)

    def _open_session(
        self, user: User, now: datetime, source_ip: str | None
    ) -> tuple[str, SessionRecord]:
        session_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        record = SessionRecord(
            session_id, user.user_id, token_digest(secret), now, now, None, source_ip
        )
        self.repo.add_session(record)
        return f"{session_id}.{secret}", record

    def _by_session(self, token: str, now: datetime) -> tuple[User, Principal]:
        session_id, _, secret = token.partition(".")
        record = self.repo.session(session_id) if secret else None
        if record is None or not same_digest(record.secret_hash, secret):
            raise AuthenticationError(INVALID_TOKEN)
        p = self.policy
        if (
            record.revoked_at is not None
            or now - record.created_at >= timedelta(seconds=p.session_timeout)
            or now - record.last_seen_at >= timedelta(seconds=p.session_idle_timeout)
        ):
            raise AuthenticationError(INVALID_TOKEN)
        user = self._active_user(record.user_id)
        if now - record.last_seen_at >= timedelta(seconds=p.touch_every):
            self.repo.touch_session(session_id, now)
        return user, Principal(user.user_id, user.username, user.role, "session", session_id)

    def _by_api_key(self, token: str, now: datetime) -> tuple[User, Principal]:
        key_id, _, secret = token.removeprefix(API_KEY_PREFIX).partition("_")
        record = self.repo.api_key(key_id) if secret else None
        if record is None or not same_digest(record.secret_hash, secret) or not record.active(now):
            raise AuthenticationError(INVALID_TOKEN)
        user = self._active_user(record.user_id)
        last = record.last_used_at
        if last is None or now - last >= timedelta(seconds=self.policy.touch_every):
            self.repo.touch_api_key(key_id, now)
        return user, Principal(user.user_id, user.username, user.role, "api_key", key_id)

    def _active_user(self, user_id: str) -> User:
        user = self.repo.user(user_id)
        if user is None or not user.enabled:
            raise AuthenticationError(INVALID_TOKEN)
        return user

    def _must_enrol(self, user: User) -> bool:
        return self.policy.mfa_required and not user.mfa_enrolled

    def _seal(self, secret: str) -> bytes:
        data = secret.encode()
        return self.keyring.encrypt(SECRET_CONTEXT, data) if self.keyring else data

    def _unseal(self, blob: bytes) -> str:
        data = self.keyring.decrypt(SECRET_CONTEXT, blob) if self.keyring else blob
        return data.decode()


def _seconds(until: datetime, now: datetime) -> int:
    """Whole seconds from ``now`` to ``until``, rounded up; at least 1 (a Retry-After)."""
    return max(1, int((until - now).total_seconds() + 0.999))
