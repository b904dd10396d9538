"""Signing in to the chat: the password form, then a one-time code in the chat when the
account is enrolled in MFA.

Every attempt goes through ``AuthService.login`` (one login path: lockout, disabled
accounts, MFA and the audit trail apply as over HTTP). The login form has no field for a
code, so when the password is right but a code is needed the chat signs the user in as
*pending*: the first thing the chat does is ask for the code, and nothing is answered until
it is given. A pending sign-in is kept in memory for a few minutes only.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from xnai.bootstrap import Container
from xnai.domain.errors import (
    AccountLockedError,
    AuthenticationError,
    MfaEnrolmentRequiredError,
    MfaRequiredError,
)
from xnai.domain.limits import MAX_LOGIN_NAME_CHARS, MAX_PASSWORD_CHARS
from xnai.domain.rbac import Principal
from xnai.ui.tickets import TicketSealer

TICKET = "ticket"  # metadata key: the sealed session token
PENDING = "mfa_pending"  # metadata key: the id of a sign-in that waits for its code
PENDING_SECONDS = 300
LOCKED = "locked"  # the login form's error key for a locked account
ENROL_FIRST = (
    "Multi-factor authentication is required for your account and you have not enrolled "
    "yet: enrol first (`POST /v1/auth/mfa/enrol`, see the user guide), then sign in again."
)


# The peer address of the request being handled, for the audit trail of chat sign-ins.
CLIENT_ADDRESS: ContextVar[str | None] = ContextVar("xnai_chat_client", default=None)


class ClientAddress:
    """Wraps the chat's ASGI app: each request runs with its peer address in
    ``CLIENT_ADDRESS`` (the sign-in callback is not given the request)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        token = CLIENT_ADDRESS.set(str(client[0]) if client else None)
        try:
            await self.app(scope, receive, send)
        finally:
            CLIENT_ADDRESS.reset(token)


class LoginRefused(Exception):
    """A sign-in refused for a reason the login form shows (``reason`` is its error key)."""

    def __init__(self, reason: str, retry_after: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class ChatLogin:
    """Who signed in, as the chat's login cookie carries it."""

    username: str
    metadata: dict[str, Any]


@dataclass
class _Pending:
    username: str
    password: str
    expires: float
    source_ip: str | None = None
    token: str | None = None  # set once the code was accepted


@dataclass
class Logins:
    """Password and one-time-code sign-ins against the container's user store."""

    container: Container
    sealer: TicketSealer
    clock: Callable[[], float] = time.monotonic
    _pending: dict[str, _Pending] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def password(
        self, username: str, password: str, *, source_ip: str | None = None
    ) -> ChatLogin | None:
        """Check a password: a login, a pending login (a code is needed), or None when
        refused; LoginRefused when the account is locked. Names and passwords longer than
        HTTP accepts are refused before they reach the user store or the audit trail."""
        if len(username) > MAX_LOGIN_NAME_CHARS or len(password) > MAX_PASSWORD_CHARS:
            self._count("login_failed")
            return None
        try:
            result = self.container.auth.login(username, password, source_ip=source_ip)
        except AccountLockedError as exc:
            self._count("locked")
            raise LoginRefused(LOCKED, exc.retry_after) from exc
        except MfaRequiredError:
            return self._pend(username, password, source_ip)
        except AuthenticationError:
            self._count("login_failed")
            return None
        return ChatLogin(result.user.username, {TICKET: self.sealer.seal(result.token)})

    def needs_code(self, metadata: dict[str, Any]) -> bool:
        """Whether this sign-in still waits for its one-time code."""
        pending = self._pending_of(metadata)
        return pending is not None and pending.token is None

    def code(self, metadata: dict[str, Any], code: str) -> None:
        """Finish a pending sign-in with a one-time code; AuthenticationError (or
        AccountLockedError, MfaRequiredError for a wrong code) when refused."""
        pending = self._pending_of(metadata)
        if pending is None:
            raise AuthenticationError("the sign-in expired: sign out and sign in again")
        try:
            result = self.container.auth.login(
                pending.username, pending.password, code.strip(), source_ip=pending.source_ip
            )
        except AccountLockedError:
            self._forget(metadata)
            self._count("locked")
            raise
        except MfaRequiredError:
            self._count("login_failed")
            raise
        with self._lock:
            pending.token = result.token
            pending.password = ""  # not needed any more
            pending.expires = self.clock() + self.container.auth.policy.session_timeout

    def token(self, metadata: dict[str, Any]) -> str | None:
        """The session token of a sign-in (None while its code is missing, or when it is
        unknown, expired or was sealed under another key)."""
        sealed = metadata.get(TICKET)
        if isinstance(sealed, str) and sealed:
            return self.sealer.open(sealed)
        pending = self._pending_of(metadata)
        return pending.token if pending is not None else None

    def principal(self, metadata: dict[str, Any]) -> Principal:
        """The principal of a sign-in, checked now (a revoked session, a disabled user or a
        changed role apply at once); AuthenticationError or MfaEnrolmentRequiredError."""
        token = self.token(metadata)
        if token is None:
            raise AuthenticationError("your chat session has ended: sign out and sign in again")
        auth = self.container.auth.authenticate(token)
        if auth.restricted:
            raise MfaEnrolmentRequiredError(ENROL_FIRST)
        return auth.principal

    def logout(self, metadata: dict[str, Any]) -> None:
        """End the session of a sign-in (nothing when it has none any more)."""
        try:
            principal = self.container.auth.authenticate(self.token(metadata) or "").principal
        except AuthenticationError:
            principal = None
        if principal is not None:
            self.container.auth.logout(principal)
        self._forget(metadata)

    def _pend(self, username: str, password: str, source_ip: str | None) -> ChatLogin:
        now = self.clock()
        pending_id = secrets.token_urlsafe(24)
        with self._lock:
            for key in [k for k, p in self._pending.items() if p.expires <= now]:
                del self._pending[key]
            expires = now + PENDING_SECONDS
            self._pending[pending_id] = _Pending(username, password, expires, source_ip)
        return ChatLogin(username.strip().lower(), {PENDING: pending_id})

    def _pending_of(self, metadata: dict[str, Any]) -> _Pending | None:
        pending_id = metadata.get(PENDING)
        if not isinstance(pending_id, str):
            return None
        with self._lock:
            pending = self._pending.get(pending_id)
            if pending is not None and pending.expires <= self.clock():
                del self._pending[pending_id]
                return None
            return pending

    def _forget(self, metadata: dict[str, Any]) -> None:
        pending_id = metadata.get(PENDING)
        if isinstance(pending_id, str):
            with self._lock:
                self._pending.pop(pending_id, None)

    def _count(self, kind: str) -> None:
        self.container.metrics.inc("xoe_security_violation_total", kind=kind)
