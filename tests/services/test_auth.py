"""AuthService over a real database, real argon2id and real TOTP, with a movable clock."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from sqlalchemy import select

from tests.clock import WALL_START, FakeClock
from tests.conftest import make_settings
from tests.identity_fixtures import (
    FAST_HASHER,
    make_service,
    postgres_available,
    postgres_database,
)
from xnai.adapters.memory.audit import RecordingAudit
from xnai.adapters.security.keyring import FernetKeyRing
from xnai.adapters.security.passwords import Argon2Hasher
from xnai.adapters.storage.sql import sqlite_url
from xnai.adapters.storage.sql_identity import users as users_table
from xnai.bootstrap import build
from xnai.domain.errors import (
    AccountLockedError,
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    MfaRequiredError,
    NotFoundError,
    PermissionDeniedError,
)
from xnai.domain.rbac import LOCAL_ADMIN, Principal, Role
from xnai.services.auth import AuthService
from xnai.services.identity import name_key

PASSWORD = "correct horse battery staple"
ADMIN_HTTP = Principal("u_root", "root", Role.ADMIN, "session", "s1")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(WALL_START)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return sqlite_url(tmp_path / "data")


@pytest.fixture
def auth(db: str, clock: FakeClock) -> AuthService:
    return make_service(db, clock=clock)


def add(auth: AuthService, name: str, role: Role = Role.VIEWER, password: str = PASSWORD) -> str:
    return auth.create_user(LOCAL_ADMIN, name, role, password)[0].user_id


def events(auth: AuthService, kind: str | None = None) -> list[dict[str, Any]]:
    assert isinstance(auth.audit, RecordingAudit)
    return [e for e in auth.audit.events if kind is None or e["event_type"] == kind]


class CountingHasher(Argon2Hasher):
    """The real hasher, counting verifications."""

    def __init__(self, **params: int) -> None:
        super().__init__(**params)
        self.verifications = 0
        self._count_lock = threading.Lock()

    def verify(self, password_hash: str, password: str) -> bool:
        with self._count_lock:
            self.verifications += 1
        return super().verify(password_hash, password)


# users and passwords ----------------------------------------------------------


def test_first_admin_once_with_a_random_password(auth: AuthService) -> None:
    made = auth.bootstrap_admin()
    assert made is not None
    admin, password = made
    assert admin.role is Role.ADMIN and len(password) >= 20
    assert admin.password_hash.startswith("$argon2id$") and password not in admin.password_hash
    assert auth.bootstrap_admin() is None  # idempotent: nobody else is created
    assert [u.username for u in auth.users(LOCAL_ADMIN)] == ["admin"]
    assert auth.login("admin", password).user.user_id == admin.user_id


def test_password_rules(auth: AuthService) -> None:
    for bad, why in [
        ("short pw", "at least 12"),
        ("Password1234", "common or breached"),
        ("QWERTYUIOP12", "common or breached"),
        ("Frederick.Long", "username"),
        ("Frederick.Long-2026!", "product, organisation or user name"),
        ("Xoe-NovAi-2026!!", "product, organisation or user name"),
        ("##XNAI##1234567", "product, organisation or user name"),
    ]:
        with pytest.raises(InvalidInputError, match=why):
            auth.create_user(LOCAL_ADMIN, "frederick.long", Role.VIEWER, bad)
    user, generated = auth.create_user(LOCAL_ADMIN, "Frederick.Long", Role.VIEWER)
    assert user.username == "frederick.long" and generated is not None
    auth.check_password(generated, "someone")  # generated passwords pass the rules
    auth.check_password("xnai tractor battery staple", "someone")  # a word among others


def test_configured_context_words_are_refused(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "data", enterprise={"security": {"password_context_words": ["Acme Corp"]}}
    )
    c = build(settings)
    try:
        with pytest.raises(InvalidInputError, match="organisation"):
            c.auth.check_password("ACME-corp-2026!", "someone")
        c.auth.check_password("acme builds rockets daily", "someone")
    finally:
        c.close()


def test_usernames_are_validated_and_unique_case_insensitively(auth: AuthService) -> None:
    add(auth, "alice")
    with pytest.raises(ConflictError):
        add(auth, "ALICE")
    for bad in ("", "-dash", "a b", "x" * 65, "semi;colon"):
        with pytest.raises(InvalidInputError):
            add(auth, bad)


def test_managing_users_needs_manage_users(auth: AuthService) -> None:
    editor = Principal("u_e", "ed", Role.EDITOR)
    system = Principal("u_s", "sys", Role.SYSTEM)
    add(auth, "bob")
    for actor in (editor, system):
        with pytest.raises(PermissionDeniedError):
            auth.create_user(actor, "mallory", Role.ADMIN, PASSWORD)
        with pytest.raises(PermissionDeniedError):
            auth.set_role(actor, "bob", Role.ADMIN)
        with pytest.raises(PermissionDeniedError):
            auth.users(actor)


def test_role_rules(auth: AuthService) -> None:
    root = auth.create_user(LOCAL_ADMIN, "root", Role.ADMIN, PASSWORD)[0]
    me = Principal(root.user_id, "root", Role.ADMIN, "session", "s1")
    add(auth, "bob")
    with pytest.raises(PermissionDeniedError, match="command line"):
        auth.create_user(me, "robot", Role.SYSTEM, PASSWORD)
    with pytest.raises(PermissionDeniedError, match="command line"):
        auth.set_role(me, "bob", Role.SYSTEM)
    with pytest.raises(PermissionDeniedError, match="own role"):
        auth.set_role(me, "root", Role.VIEWER)
    assert auth.set_role(LOCAL_ADMIN, "bob", Role.SYSTEM).role is Role.SYSTEM  # the CLI may
    assert auth.set_role(me, "bob", Role.EDITOR).role is Role.EDITOR
    change = events(auth, "role_changed")[-1]
    assert change["details"] == {"from": "system", "to": "editor"}
    assert change["user_id"] == root.user_id


def test_the_last_enabled_admin_stays(auth: AuthService) -> None:
    add(auth, "root", Role.ADMIN)
    with pytest.raises(ConflictError, match="last enabled admin"):
        auth.set_role(LOCAL_ADMIN, "root", Role.EDITOR)
    with pytest.raises(ConflictError, match="last enabled admin"):
        auth.set_enabled(LOCAL_ADMIN, "root", False)
    add(auth, "second", Role.ADMIN)
    assert not auth.set_enabled(LOCAL_ADMIN, "root", False).enabled
    with pytest.raises(ConflictError):
        auth.set_role(LOCAL_ADMIN, "second", Role.VIEWER)


def test_unknown_user_is_not_found(auth: AuthService) -> None:
    for call in (
        lambda: auth.set_enabled(LOCAL_ADMIN, "ghost", False),
        lambda: auth.unlock(LOCAL_ADMIN, "ghost"),
        lambda: auth.reset_password(LOCAL_ADMIN, "ghost"),
    ):
        with pytest.raises(NotFoundError):
            call()


# logins, lockout --------------------------------------------------------------


def test_login_gives_an_opaque_token_stored_only_as_a_hash(
    auth: AuthService, tmp_path: Path
) -> None:
    add(auth, "alice")
    result = auth.login("Alice", PASSWORD, source_ip="10.0.0.7")
    session_id, _, secret = result.token.partition(".")
    assert len(secret) >= 43  # 32 random bytes, URL-safe base64: 256 bits
    assert result.session.secret_hash != secret and len(result.session.secret_hash) == 64
    stored = b"".join(p.read_bytes() for p in (tmp_path / "data").iterdir() if p.is_file())
    assert secret.encode() not in stored and PASSWORD.encode() not in stored
    who = auth.authenticate(result.token).principal
    assert (who.username, who.role, who.via, who.credential_id) == (
        "alice",
        Role.VIEWER,
        "session",
        session_id,
    )


def test_bad_tokens_are_refused_alike(auth: AuthService) -> None:
    add(auth, "alice")
    token = auth.login("alice", PASSWORD).token
    session_id, _, secret = token.partition(".")
    for bad in ("", "garbage", f"{session_id}.", f"{session_id}.{secret[:-1]}x", f"x.{secret}"):
        with pytest.raises(AuthenticationError) as info:
            auth.authenticate(bad)
        assert str(info.value) == "invalid, expired or revoked credentials: log in again"


def test_unknown_and_known_names_fail_identically(db: str, clock: FakeClock) -> None:
    hasher = CountingHasher(time_cost=1, memory_cost=1024, parallelism=1)
    auth = make_service(db, clock=clock, hasher=hasher)
    add(auth, "alice")
    outcomes = []
    for name in ("alice", "nobody"):
        before = hasher.verifications
        with pytest.raises(AuthenticationError) as info:
            auth.login(name, "wrong password 123")
        outcomes.append((type(info.value), str(info.value), hasher.verifications - before))
    assert outcomes[0] == outcomes[1]  # same error, same message, one argon2 check each
    assert outcomes[0][2] == 1
    for _ in range(4):  # unknown names lock exactly like known ones
        with pytest.raises(AuthenticationError):
            auth.login("nobody", "wrong password 123")
    with pytest.raises(AccountLockedError):
        auth.login("nobody", "wrong password 123")


def test_timing_of_unknown_and_known_names_is_comparable(db: str, clock: FakeClock) -> None:
    auth = make_service(db, clock=clock, hasher=Argon2Hasher(), failed_login_lockout=100)
    add(auth, "alice")

    def median(name: str) -> float:
        samples = []
        for _ in range(5):
            started = time.perf_counter()
            with pytest.raises(AuthenticationError):
                auth.login(name, "wrong password 123")
            samples.append(time.perf_counter() - started)
        return sorted(samples)[2]

    median("nobody")  # the dummy hash is made on first use
    known, unknown = median("alice"), median("nobody")
    assert 0.4 < known / unknown < 2.5


def test_lockout_after_five_failures_then_expiry(auth: AuthService, clock: FakeClock) -> None:
    add(auth, "alice")
    for _ in range(4):
        with pytest.raises(AuthenticationError) as info:
            auth.login("alice", "wrong password 123")
        assert not isinstance(info.value, AccountLockedError)
    with pytest.raises(AccountLockedError) as locked:
        auth.login("alice", "wrong password 123")
    assert locked.value.retry_after == 900
    clock.advance(600)
    with pytest.raises(AccountLockedError) as still:
        auth.login("alice", PASSWORD)  # the right password does not help while locked
    assert still.value.retry_after == 300
    assert auth.describe(LOCAL_ADMIN, "alice").locked_until is not None
    clock.advance(300)
    assert auth.login("alice", PASSWORD).token
    assert [e["severity"] for e in events(auth, "account_locked")] == ["warning"]
    assert all(e["severity"] == "warning" for e in events(auth, "login_failure"))


def test_success_resets_the_count(auth: AuthService) -> None:
    add(auth, "alice")
    for _ in range(2):
        for _ in range(4):
            with pytest.raises(AuthenticationError):
                auth.login("alice", "wrong password 123")
        auth.login("alice", PASSWORD)
    assert auth.repo.failure_state(name_key("alice")).failures == 0


def test_lockout_survives_a_restart(db: str, clock: FakeClock) -> None:
    first = make_service(db, clock=clock)
    add(first, "alice")
    for _ in range(5):
        with pytest.raises(AuthenticationError):
            first.login("alice", "wrong password 123")
    first.repo.close()
    second = make_service(db, clock=clock)
    with pytest.raises(AccountLockedError):
        second.login("alice", PASSWORD)


def test_admin_unlocks(auth: AuthService) -> None:
    add(auth, "alice")
    for _ in range(5):
        with pytest.raises(AuthenticationError):
            auth.login("alice", "wrong password 123")
    auth.unlock(LOCAL_ADMIN, "alice")
    assert auth.login("alice", PASSWORD).token
    assert events(auth, "account_unlocked")[0]["resource"] == "user:alice"


def test_disabled_users_fail_like_wrong_passwords(auth: AuthService) -> None:
    add(auth, "alice")
    add(auth, "root", Role.ADMIN)
    auth.set_enabled(LOCAL_ADMIN, "alice", False)
    with pytest.raises(AuthenticationError, match="invalid username or password"):
        auth.login("alice", PASSWORD)
    auth.set_enabled(LOCAL_ADMIN, "alice", True)
    assert auth.login("alice", PASSWORD).token


@pytest.fixture(params=["sqlite", "postgres"])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "data")
        return
    if not postgres_available():
        pytest.skip("PostgreSQL on 127.0.0.1:5432 not running")
    with postgres_database() as url:
        yield url


def test_twenty_parallel_wrong_passwords(any_db: str, clock: FakeClock) -> None:
    hasher = CountingHasher()  # the production cost: attempts really overlap
    auth = make_service(any_db, clock=clock, hasher=hasher)
    add(auth, "alice")
    before = hasher.verifications
    barrier = threading.Barrier(20)
    outcomes: list[str] = []

    def attempt() -> None:
        barrier.wait()
        try:
            auth.login("alice", "wrong password 123")
        except AccountLockedError:
            outcomes.append("locked")
        except AuthenticationError:
            outcomes.append("wrong")

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(outcomes) == 20
    assert outcomes.count("wrong") == 4 and outcomes.count("locked") == 16
    assert hasher.verifications - before == 5  # only five passwords were ever checked
    assert auth.repo.failure_state(name_key("alice")).failures == 5
    with pytest.raises(AccountLockedError):
        auth.login("alice", PASSWORD)


# sessions ---------------------------------------------------------------------


def test_idle_timeout(auth: AuthService, clock: FakeClock) -> None:
    add(auth, "alice")
    token = auth.login("alice", PASSWORD).token
    for _ in range(3):  # activity keeps it alive
        clock.advance(1700)
        auth.authenticate(token)
    clock.advance(1800)
    with pytest.raises(AuthenticationError):
        auth.authenticate(token)


def test_absolute_lifetime(auth: AuthService, clock: FakeClock) -> None:
    add(auth, "alice")
    result = auth.login("alice", PASSWORD)
    assert auth.session_expires_at(result.session) == clock.now + timedelta(hours=8)
    for _ in range(28):  # busy all day, never idle
        clock.advance(1000)
        auth.authenticate(result.token)
    clock.advance(799)
    auth.authenticate(result.token)
    clock.advance(1)
    with pytest.raises(AuthenticationError):
        auth.authenticate(result.token)


def test_logout_revokes(auth: AuthService) -> None:
    add(auth, "alice")
    token = auth.login("alice", PASSWORD).token
    other = auth.login("alice", PASSWORD).token
    auth.logout(auth.authenticate(token).principal)
    with pytest.raises(AuthenticationError):
        auth.authenticate(token)
    assert auth.authenticate(other).principal.username == "alice"  # only that session ended
    assert events(auth, "logout")


def test_purge_removes_old_sessions(auth: AuthService, clock: FakeClock) -> None:
    add(auth, "alice")
    old = auth.login("alice", PASSWORD).session.session_id
    clock.advance(9 * 3600)
    new = auth.login("alice", PASSWORD).session.session_id
    assert auth.purge_sessions() == 1
    assert auth.repo.session(old) is None and auth.repo.session(new) is not None


# API keys -------------------------------------------------------------------------


def test_api_keys(auth: AuthService, clock: FakeClock) -> None:
    uid = add(auth, "alice", Role.EDITOR)
    alice = Principal(uid, "alice", Role.EDITOR, "session", "s")
    record, key = auth.create_api_key(alice, "backup job", clock.now + timedelta(days=1))
    assert key.startswith(f"xnai_{record.key_id}_") and len(key) > 60
    assert key not in record.secret_hash
    who = auth.authenticate(key).principal
    assert (who.username, who.role, who.via, who.credential_id) == (
        "alice",
        Role.EDITOR,
        "api_key",
        record.key_id,
    )
    with pytest.raises(AuthenticationError):
        auth.authenticate(key[:-2] + "zz")  # right id, wrong secret
    assert [k.name for k in auth.api_keys(alice)] == ["backup job"]
    clock.advance(86400)
    with pytest.raises(AuthenticationError):
        auth.authenticate(key)  # expired


def test_api_key_revocation_is_owner_only(auth: AuthService) -> None:
    alice = Principal(add(auth, "alice"), "alice", Role.VIEWER)
    bob = Principal(add(auth, "bob"), "bob", Role.VIEWER)
    record, key = auth.create_api_key(alice, "script")
    with pytest.raises(NotFoundError):
        auth.revoke_api_key(bob, record.key_id)
    auth.revoke_api_key(alice, record.key_id)
    with pytest.raises(AuthenticationError):
        auth.authenticate(key)
    assert events(auth, "api_key_revoked")[0]["resource"] == f"api_key:{record.key_id}"


def test_disabling_revokes_every_session_and_key_at_once(auth: AuthService) -> None:
    add(auth, "root", Role.ADMIN)
    alice = Principal(add(auth, "alice"), "alice", Role.VIEWER)
    tokens = [auth.login("alice", PASSWORD).token for _ in range(2)]
    tokens.append(auth.create_api_key(alice, "k")[1])
    auth.set_enabled(LOCAL_ADMIN, "alice", False)
    auth.set_enabled(LOCAL_ADMIN, "alice", True)  # enabling again revives nothing
    for token in tokens:
        with pytest.raises(AuthenticationError):
            auth.authenticate(token)
    revoked = events(auth, "session_revoked")[-1]
    assert revoked["details"] == {"count": 3, "reason": "user_disabled"}


def test_password_change_needs_the_current_one_and_revokes(auth: AuthService) -> None:
    uid = add(auth, "alice")
    token = auth.login("alice", PASSWORD).token
    key = auth.create_api_key(Principal(uid, "alice", Role.VIEWER), "k")[1]
    me = auth.authenticate(token).principal
    with pytest.raises(PermissionDeniedError, match="current password"):
        auth.change_password(me, "not my password", "a brand new passphrase")
    with pytest.raises(InvalidInputError):
        auth.change_password(me, PASSWORD, "password1234")
    auth.change_password(me, PASSWORD, "a brand new passphrase")
    for old in (token, key):
        with pytest.raises(AuthenticationError):
            auth.authenticate(old)
    with pytest.raises(AuthenticationError):
        auth.login("alice", PASSWORD)
    assert auth.login("alice", "a brand new passphrase").token
    assert events(auth, "password_changed")


def test_wrong_current_passwords_count_toward_lockout(auth: AuthService) -> None:
    add(auth, "alice")
    me = auth.authenticate(auth.login("alice", PASSWORD).token).principal
    for _ in range(4):
        with pytest.raises(PermissionDeniedError):
            auth.change_password(me, "guess number x", "a brand new passphrase")
    with pytest.raises(AccountLockedError):
        auth.change_password(me, "guess number y", "a brand new passphrase")
    with pytest.raises(AccountLockedError):
        auth.login("alice", PASSWORD)


def test_admin_reset_revokes_unlocks_and_prints_once(auth: AuthService) -> None:
    add(auth, "alice")
    token = auth.login("alice", PASSWORD).token
    for _ in range(5):
        with pytest.raises(AuthenticationError):
            auth.login("alice", "wrong password 123")
    generated = auth.reset_password(ADMIN_HTTP, "alice")
    assert generated is not None
    with pytest.raises(AuthenticationError):
        auth.authenticate(token)
    assert auth.login("alice", generated).token
    assert auth.reset_password(LOCAL_ADMIN, "alice", "chosen passphrase here") is None
    assert auth.login("alice", "chosen passphrase here").token
    assert len(events(auth, "password_reset")) == 2


# MFA --------------------------------------------------------------------------


def wrong_code(secret: str, at: datetime) -> str:
    """A well-formed code that no allowed time step produces."""
    totp = pyotp.TOTP(secret)
    valid = {totp.at(at + timedelta(seconds=d)) for d in (-30, 0, 30)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)


def enrol(auth: AuthService, name: str) -> str:
    me = auth.authenticate(auth.login(name, PASSWORD).token).principal
    secret, uri = auth.begin_mfa_enrolment(me, PASSWORD)
    assert uri.startswith("otpauth://totp/") and secret in uri
    with pytest.raises(InvalidInputError):
        auth.confirm_mfa_enrolment(me, wrong_code(secret, auth.clock()))
    auth.confirm_mfa_enrolment(me, pyotp.TOTP(secret).at(auth.clock()))
    with pytest.raises(ConflictError):
        auth.begin_mfa_enrolment(me, PASSWORD)  # enrolled: only an admin can reset it
    return secret


def test_totp_login_and_single_use(auth: AuthService, clock: FakeClock) -> None:
    add(auth, "alice")
    secret = enrol(auth, "alice")
    assert events(auth, "mfa_enrolled")
    with pytest.raises(MfaRequiredError, match="one-time code"):
        auth.login("alice", PASSWORD)
    assert auth.repo.failure_state(name_key("alice")).failures == 0  # not a failure
    clock.advance(30)
    code = pyotp.TOTP(secret).at(clock.now)
    assert auth.login("alice", PASSWORD, code).token
    with pytest.raises(MfaRequiredError, match="already used"):
        auth.login("alice", PASSWORD, code)  # a code works once
    clock.advance(30)
    assert auth.login("alice", PASSWORD, pyotp.TOTP(secret).at(clock.now)).token


def test_wrong_codes_count_toward_lockout(auth: AuthService, clock: FakeClock) -> None:
    add(auth, "alice")
    secret = enrol(auth, "alice")
    right = pyotp.TOTP(secret).at(clock.now + timedelta(seconds=30))
    wrong = wrong_code(secret, clock.now)
    for _ in range(4):
        with pytest.raises(MfaRequiredError):
            auth.login("alice", PASSWORD, wrong)
    with pytest.raises(AccountLockedError):
        auth.login("alice", PASSWORD, wrong)
    with pytest.raises(AccountLockedError):
        auth.login("alice", PASSWORD, right)


def test_mfa_required_restricts_until_enrolled(db: str, clock: FakeClock) -> None:
    auth = make_service(db, clock=clock, mfa_required=True)
    add(auth, "alice")
    result = auth.login("alice", PASSWORD)
    assert result.mfa_enrolment_required
    assert auth.authenticate(result.token).restricted
    enrol(auth, "alice")
    assert not auth.authenticate(result.token).restricted  # the same session, now enrolled


def test_admin_resets_mfa(auth: AuthService) -> None:
    add(auth, "alice")
    enrol(auth, "alice")
    auth.reset_mfa(LOCAL_ADMIN, "alice")
    assert auth.login("alice", PASSWORD).token  # no code needed any more
    assert events(auth, "mfa_reset")[0]["severity"] == "warning"
    enrol(auth, "alice")  # and they can enrol again


def test_totp_secret_is_encrypted_at_rest_and_reencrypted(
    db: str, clock: FakeClock, tmp_path: Path
) -> None:
    ring = FernetKeyRing.open(tmp_path / "master.key", create=True)
    auth = make_service(db, clock=clock, keyring=ring)
    add(auth, "alice")
    secret = enrol(auth, "alice")
    with auth.repo.engine.connect() as conn:  # type: ignore[attr-defined]
        stored = conn.execute(select(users_table.c.mfa_secret)).scalar_one()
    assert secret.encode() not in stored
    assert ring.decrypt("user_data", stored) == secret.encode()
    ring.add_key()
    assert auth.sealed_secrets.reencrypt() == 1
    ring.retire_previous()
    clock.advance(30)
    assert auth.login("alice", PASSWORD, pyotp.TOTP(secret).at(clock.now)).token


# audit --------------------------------------------------------------------------


def test_audit_trail_never_holds_secrets(auth: AuthService, clock: FakeClock) -> None:
    add(auth, "root", Role.ADMIN)
    uid = add(auth, "alice")
    token = auth.login("alice", PASSWORD).token
    me = auth.authenticate(token).principal
    _, key = auth.create_api_key(me, "k")
    secret, _ = auth.begin_mfa_enrolment(me, PASSWORD)
    code = pyotp.TOTP(secret).at(clock.now)
    auth.confirm_mfa_enrolment(me, code)
    with pytest.raises(AuthenticationError):
        auth.login("alice", "wrong password 123")
    generated = auth.reset_password(LOCAL_ADMIN, "alice")
    auth.set_role(LOCAL_ADMIN, "alice", Role.EDITOR)
    auth.set_enabled(LOCAL_ADMIN, "alice", False)
    auth.set_enabled(LOCAL_ADMIN, "alice", True)
    kinds = {e["event_type"] for e in events(auth)}
    assert kinds >= {
        "user_created",
        "login_success",
        "login_failure",
        "api_key_created",
        "mfa_enrolled",
        "password_reset",
        "session_revoked",
        "role_changed",
        "user_disabled",
        "user_enabled",
    }
    text = json.dumps(events(auth))
    for secret_value in (PASSWORD, token, token.partition(".")[2], key, secret, code, generated):
        assert secret_value and secret_value not in text
    assert uid in text  # who it was about is there


def test_fast_hasher_is_real_argon2id() -> None:
    assert FAST_HASHER.hash("x" * 12).startswith("$argon2id$")


def test_verified_credentials_are_cached_briefly_and_forgotten_on_any_change(
    auth: AuthService, clock: FakeClock
) -> None:
    add(auth, "root", Role.ADMIN)
    alice = Principal(add(auth, "alice"), "alice", Role.VIEWER)
    token = auth.login("alice", PASSWORD).token
    key = auth.create_api_key(alice, "k")[1]
    assert auth.authenticate(token).principal.role is Role.VIEWER  # now cached
    assert auth.authenticate(key).principal.username == "alice"
    # A change through the service applies to the very next request.
    auth.set_role(LOCAL_ADMIN, "alice", Role.EDITOR)
    assert auth.authenticate(token).principal.role is Role.EDITOR
    assert auth.authenticate(key).principal.role is Role.EDITOR
    # A change by another process (straight in the database) applies within the cache time.
    auth.repo.revoke_credentials(alice.user_id, clock())
    assert auth.authenticate(key).principal.username == "alice"
    clock.advance(1.0)
    for credential in (token, key):
        with pytest.raises(AuthenticationError):
            auth.authenticate(credential)
