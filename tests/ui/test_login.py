"""Signing in to the chat through the user store: passwords, lockout, MFA, revocation."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import timedelta

import pyotp
import pytest

from tests.api.conftest import FAST_HASHER, password_of
from tests.clock import WALL_START, FakeClock
from xnai.adapters.memory.metrics import RecordingMetrics
from xnai.bootstrap import Container
from xnai.domain.errors import (
    AccountLockedError,
    AuthenticationError,
    MfaEnrolmentRequiredError,
    MfaRequiredError,
)
from xnai.domain.rbac import LOCAL_ADMIN, Role
from xnai.ui.login import (
    CLIENT_ADDRESS,
    LOCKED,
    PENDING,
    PENDING_SECONDS,
    TICKET,
    ClientAddress,
    LoginRefused,
    Logins,
)
from xnai.ui.tickets import TicketSealer


@pytest.fixture
def clock(container: Container) -> FakeClock:
    clock = FakeClock(WALL_START)
    container.auth.clock = clock
    container.auth.hasher = FAST_HASHER
    container.metrics = RecordingMetrics()
    for name, role in (("alice", Role.ADMIN), ("victor", Role.VIEWER), ("mona", Role.VIEWER)):
        container.auth.create_user(LOCAL_ADMIN, name, role, password_of(name))
    return clock


@pytest.fixture
def ticks() -> FakeClock[float]:
    return FakeClock(1000.0)


@pytest.fixture
def logins(container: Container, clock: FakeClock, ticks: FakeClock[float]) -> Logins:
    return Logins(container, TicketSealer(container.keyring), clock=ticks)


def violations(c: Container, kind: str) -> float:
    metrics = c.metrics
    assert isinstance(metrics, RecordingMetrics)
    return metrics.value("xoe_security_violation_total", kind=kind)


def enrol(c: Container, clock: FakeClock, username: str) -> pyotp.TOTP:
    principal = c.auth.authenticate(c.auth.login(username, password_of(username)).token).principal
    secret, _ = c.auth.begin_mfa_enrolment(principal, password_of(username))
    totp = pyotp.TOTP(secret)
    c.auth.confirm_mfa_enrolment(principal, totp.at(clock() - timedelta(seconds=30)))
    return totp


def test_a_password_login_carries_the_session_sealed(logins: Logins, container: Container) -> None:
    login = logins.password("Alice", password_of("alice"))
    assert login is not None and login.username == "alice"
    sealed = login.metadata[TICKET]
    token = logins.token(login.metadata)
    assert token is not None and token not in sealed
    principal = logins.principal(login.metadata)
    assert (principal.username, principal.role, principal.via) == ("alice", Role.ADMIN, "session")


def test_wrong_passwords_and_unknown_users_are_refused_alike(
    logins: Logins, container: Container
) -> None:
    assert logins.password("alice", "wrong password here") is None
    assert logins.password("nobody", "wrong password here") is None
    assert violations(container, "login_failed") == 2


def test_a_disabled_user_cannot_sign_in(logins: Logins, container: Container) -> None:
    container.auth.set_enabled(LOCAL_ADMIN, "victor", False)
    assert logins.password("victor", password_of("victor")) is None


def test_lockout_applies_and_is_reported_to_the_form(logins: Logins, container: Container) -> None:
    limit = container.auth.policy.failed_login_lockout
    for _ in range(limit - 1):
        assert logins.password("victor", "wrong password here") is None
    with pytest.raises(LoginRefused) as refused:
        logins.password("victor", "wrong password here")
    assert refused.value.reason == LOCKED and refused.value.retry_after
    with pytest.raises(LoginRefused):  # even the right password, while locked
        logins.password("victor", password_of("victor"))
    assert violations(container, "locked") == 2


def test_revocation_and_disabling_apply_to_the_next_question(
    logins: Logins, container: Container, clock: FakeClock
) -> None:
    login = logins.password("victor", password_of("victor"))
    assert login is not None
    logins.principal(login.metadata)
    container.auth.set_enabled(LOCAL_ADMIN, "victor", False)
    with pytest.raises(AuthenticationError):
        logins.principal(login.metadata)


def test_logout_ends_the_session(logins: Logins, container: Container) -> None:
    login = logins.password("alice", password_of("alice"))
    assert login is not None
    token = logins.token(login.metadata)
    logins.logout(login.metadata)
    with pytest.raises(AuthenticationError):
        container.auth.authenticate(token or "")
    logins.logout(login.metadata)  # a second time: nothing left to end


def test_a_tampered_ticket_is_no_session(logins: Logins) -> None:
    login = logins.password("alice", password_of("alice"))
    assert login is not None
    forged = {TICKET: login.metadata[TICKET][:-6] + "AAAAAA"}
    with pytest.raises(AuthenticationError):
        logins.principal(forged)


def test_mfa_sign_in_is_pending_until_the_code(
    logins: Logins, container: Container, clock: FakeClock
) -> None:
    totp = enrol(container, clock, "mona")
    login = logins.password("mona", password_of("mona"))
    assert login is not None and TICKET not in login.metadata and PENDING in login.metadata
    assert logins.needs_code(login.metadata)
    with pytest.raises(AuthenticationError):
        logins.principal(login.metadata)  # nothing is answered before the code
    valid = {totp.at(clock() + timedelta(seconds=d)) for d in (-30, 0, 30)}
    wrong = next(c for c in ("000000", "111111", "222222") if c not in valid)
    with pytest.raises(MfaRequiredError):
        logins.code(login.metadata, wrong)
    logins.code(login.metadata, totp.at(clock()))
    assert not logins.needs_code(login.metadata)
    assert logins.principal(login.metadata).username == "mona"


def test_wrong_codes_count_towards_the_lockout(
    logins: Logins, container: Container, clock: FakeClock
) -> None:
    totp = enrol(container, clock, "mona")
    valid = {totp.at(clock() + timedelta(seconds=d)) for d in (-30, 0, 30)}
    wrong = next(c for c in ("000000", "111111", "222222") if c not in valid)
    login = logins.password("mona", password_of("mona"))
    assert login is not None
    with pytest.raises(AccountLockedError):
        for _ in range(container.auth.policy.failed_login_lockout):
            with pytest.raises(MfaRequiredError):
                logins.code(login.metadata, wrong)
    assert not logins.needs_code(login.metadata)  # the pending sign-in is gone


def test_a_pending_sign_in_expires(
    logins: Logins, container: Container, clock: FakeClock, ticks: FakeClock[float]
) -> None:
    enrol(container, clock, "mona")
    login = logins.password("mona", password_of("mona"))
    assert login is not None
    ticks.now += PENDING_SECONDS + 1
    assert not logins.needs_code(login.metadata)
    with pytest.raises(AuthenticationError, match="expired"):
        logins.code(login.metadata, "123456")


def test_a_user_who_must_enrol_is_told_so(container: Container, clock: FakeClock) -> None:
    container.auth.policy = replace(container.auth.policy, mfa_required=True)
    logins = Logins(container, TicketSealer(container.keyring))
    login = logins.password("victor", password_of("victor"))
    assert login is not None
    with pytest.raises(MfaEnrolmentRequiredError, match="enrol"):
        logins.principal(login.metadata)


def test_chat_login_caps_username(container: Container, clock: FakeClock, logins: Logins) -> None:
    audit = container.auth.audit
    before = len(audit.events)  # type: ignore[attr-defined]
    huge = "x" * 100_000
    for name, password in ((huge, "whatever"), ("a" * 257, "whatever"), ("alice", "p" * 5000)):
        assert logins.password(name, password) is None
    fresh = audit.events[before:]  # type: ignore[attr-defined]
    assert all(len(json.dumps(e)) < 2000 for e in fresh)
    assert violations(container, "login_failed") == 3
    # Names within the HTTP cap still fail the usual way, and alice is not locked out.
    assert logins.password("a" * 256, "whatever") is None
    assert logins.password("alice", password_of("alice")) is not None


def test_chat_login_audit_records_client_address(
    container: Container, clock: FakeClock, logins: Logins
) -> None:
    seen: list[str | None] = []

    async def chat(scope: dict, receive: object, send: object) -> None:
        seen.append(CLIENT_ADDRESS.get())
        assert logins.password("alice", "wrong password", source_ip=CLIENT_ADDRESS.get()) is None
        assert logins.password("alice", password_of("alice"), source_ip=CLIENT_ADDRESS.get())

    app = ClientAddress(chat)
    asyncio.run(app({"type": "http", "client": ("203.0.113.7", 51000)}, None, None))
    assert seen == ["203.0.113.7"] and CLIENT_ADDRESS.get() is None
    events = container.auth.audit.events  # type: ignore[attr-defined]
    last = {e["event_type"]: e for e in events if e["event_type"].startswith("login_")}
    assert last["login_failure"]["source_ip"] == "203.0.113.7"
    assert last["login_success"]["source_ip"] == "203.0.113.7"


def test_chat_login_with_a_code_keeps_the_client_address(
    container: Container, clock: FakeClock, logins: Logins
) -> None:
    totp = enrol(container, clock, "mona")
    pending = logins.password("mona", password_of("mona"), source_ip="198.51.100.4")
    assert pending is not None
    with pytest.raises(MfaRequiredError):
        logins.code(pending.metadata, "000000")
    logins.code(pending.metadata, totp.at(clock()))
    events = container.auth.audit.events  # type: ignore[attr-defined]
    mine = [e for e in events if e["event_type"] in ("login_failure", "login_success")][-2:]
    assert [e["source_ip"] for e in mine] == ["198.51.100.4", "198.51.100.4"]
