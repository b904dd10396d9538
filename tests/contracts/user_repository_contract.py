"""Behaviour every UserRepository adapter must share; subclass and override `repo`."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from xnai.domain.errors import ConflictError
from xnai.domain.identity import (
    ApiKeyRecord,
    Attempt,
    FailureWindow,
    SessionRecord,
    User,
    UserRepository,
)
from xnai.domain.rbac import Role

T0 = datetime(2026, 11, 26, 9, 0, 0, tzinfo=UTC)


def user(name: str, role: Role = Role.VIEWER, *, enabled: bool = True) -> User:
    """A user called ``name`` with id ``u-<name>``."""
    return User(f"u-{name}", name, role, f"hash-of-{name}", T0, T0, enabled)


def session(session_id: str, user_id: str, minutes: int = 0) -> SessionRecord:
    """A session created ``minutes`` after T0."""
    at = T0 + timedelta(minutes=minutes)
    return SessionRecord(session_id, user_id, "h" * 64, at, at, None, "10.0.0.7")


def api_key(key_id: str, user_id: str, minutes: int = 0) -> ApiKeyRecord:
    """An API key created ``minutes`` after T0."""
    return ApiKeyRecord(key_id, user_id, f"key {key_id}", "k" * 64, T0 + timedelta(minutes=minutes))


class UserRepositoryContract:
    """Mixin of contract tests; a `Test...` subclass supplies an empty `repo`."""

    @pytest.fixture
    def repo(self) -> UserRepository:
        """The repository under test (subclasses override this fixture)."""
        pytest.fail("UserRepositoryContract subclasses must override the `repo` fixture")

    def test_satisfies_the_port(self, repo: UserRepository) -> None:
        assert isinstance(repo, UserRepository)
        assert repo.count_users() == 0 and repo.users() == []

    # users ------------------------------------------------------------------

    def test_users_round_trip_and_list_by_name(self, repo: UserRepository) -> None:
        bob, alice = user("bob"), user("alice", Role.ADMIN)
        repo.add_user(bob)
        repo.add_user(alice)
        assert repo.user("u-bob") == bob and repo.user_by_name("alice") == alice
        assert repo.user("u-nobody") is None and repo.user_by_name("nobody") is None
        assert repo.users() == [alice, bob] and repo.count_users() == 2

    def test_a_taken_username_conflicts(self, repo: UserRepository) -> None:
        repo.add_user(user("alice"))
        clash = User("u-other", "alice", Role.EDITOR, "x", T0, T0)
        with pytest.raises(ConflictError):
            repo.add_user(clash)
        assert repo.count_users() == 1 and repo.user("u-other") is None

    def test_password_and_mfa_updates(self, repo: UserRepository) -> None:
        repo.add_user(user("alice"))
        later = T0 + timedelta(days=1)
        repo.set_password("u-alice", "new-hash", later)
        repo.set_mfa("u-alice", b"sealed-secret", False)
        found = repo.user("u-alice")
        assert found is not None
        assert (found.password_hash, found.password_changed_at) == ("new-hash", later)
        assert (found.mfa_secret, found.mfa_enrolled) == (b"sealed-secret", False)
        repo.replace_mfa_secret("u-alice", b"resealed")
        repo.set_mfa("u-alice", b"resealed", True)
        found = repo.user("u-alice")
        assert found is not None and (found.mfa_secret, found.mfa_enrolled) == (b"resealed", True)
        repo.set_mfa("u-alice", None, False)
        found = repo.user("u-alice")
        assert found is not None and found.mfa_secret is None

    def test_each_totp_step_is_used_once_and_never_an_older_one(self, repo: UserRepository) -> None:
        repo.add_user(user("alice"))
        repo.set_mfa("u-alice", b"s", True)
        assert repo.use_totp_step("u-alice", 100) is True
        assert repo.use_totp_step("u-alice", 100) is False
        assert repo.use_totp_step("u-alice", 99) is False
        assert repo.use_totp_step("u-alice", 101) is True
        repo.replace_mfa_secret("u-alice", b"s2")
        assert repo.use_totp_step("u-alice", 101) is False  # a rotation keeps the step
        repo.set_mfa("u-alice", b"new", True)  # a new secret starts afresh
        assert repo.use_totp_step("u-alice", 5) is True

    def test_concurrent_use_of_one_step_succeeds_once(self, repo: UserRepository) -> None:
        repo.add_user(user("alice"))
        with ThreadPoolExecutor(max_workers=6) as pool:
            results = list(pool.map(lambda _: repo.use_totp_step("u-alice", 7), range(12)))
        assert results.count(True) == 1

    def test_the_last_enabled_admin_stays(self, repo: UserRepository) -> None:
        repo.add_user(user("root", Role.ADMIN))
        repo.add_user(user("bob"))
        assert repo.set_role("u-root", Role.VIEWER) is False
        assert repo.set_enabled("u-root", False) is False
        assert repo.delete_user("u-root", "root") is False
        assert repo.set_role("u-bob", Role.ADMIN) is True
        assert repo.set_enabled("u-root", False) is True  # bob is an admin now
        assert repo.set_role("u-bob", Role.EDITOR) is False  # root is disabled
        assert repo.set_enabled("u-root", True) is True
        assert repo.set_role("u-bob", Role.EDITOR) is True
        found = repo.user("u-bob")
        assert found is not None and found.role is Role.EDITOR
        assert repo.set_role("u-nobody", Role.ADMIN) is False

    def test_delete_removes_the_user_with_sessions_keys_and_failures(
        self, repo: UserRepository
    ) -> None:
        repo.add_user(user("root", Role.ADMIN))
        repo.add_user(user("bob"))
        repo.add_session(session("s1", "u-bob"))
        repo.add_api_key(api_key("k1", "u-bob"))
        repo.begin_attempt("bob", T0, 5, 60)
        repo.add_session(session("s2", "u-root"))
        assert repo.delete_user("u-bob", "bob") is True
        assert repo.user("u-bob") is None and repo.session("s1") is None
        assert repo.api_key("k1") is None and repo.failure_state("bob").failures == 0
        assert repo.session("s2") is not None
        assert repo.delete_user("u-bob", "bob") is False

    # sessions and API keys ----------------------------------------------------

    def test_sessions_round_trip_touch_and_revoke(self, repo: UserRepository) -> None:
        repo.add_user(user("alice"))
        repo.add_session(session("s1", "u-alice"))
        assert repo.session("s1") == session("s1", "u-alice")
        later = T0 + timedelta(minutes=5)
        repo.touch_session("s1", later)
        repo.touch_session("s1", T0)  # never moves back
        found = repo.session("s1")
        assert found is not None and found.last_seen_at == later
        assert repo.revoke_session("s1", later) is True
        assert repo.revoke_session("s1", later) is False
        assert repo.revoke_session("nope", later) is False
        found = repo.session("s1")
        assert found is not None and found.revoked_at == later

    def test_sessions_of_a_user_newest_first(self, repo: UserRepository) -> None:
        repo.add_user(user("alice"))
        repo.add_user(user("bob"))
        for i, sid in enumerate(["s1", "s2", "s3"]):
            repo.add_session(session(sid, "u-alice", i))
        repo.add_session(session("sb", "u-bob"))
        assert [s.session_id for s in repo.sessions_of("u-alice")] == ["s3", "s2", "s1"]

    def test_purge_removes_idle_and_long_revoked_sessions(self, repo: UserRepository) -> None:
        repo.add_user(user("alice"))
        repo.add_session(session("old", "u-alice", 0))
        repo.add_session(session("fresh", "u-alice", 60))
        repo.add_session(session("revoked", "u-alice", 60))
        repo.revoke_session("revoked", T0 + timedelta(minutes=61))
        assert repo.purge_sessions(T0 + timedelta(minutes=30)) == 1
        assert repo.session("old") is None and repo.session("fresh") is not None
        assert repo.purge_sessions(T0 + timedelta(minutes=62)) == 2

    def test_api_keys_round_trip_touch_and_revoke(self, repo: UserRepository) -> None:
        repo.add_user(user("alice"))
        repo.add_api_key(api_key("k2", "u-alice", 1))
        repo.add_api_key(api_key("k1", "u-alice", 0))
        assert [k.key_id for k in repo.api_keys("u-alice")] == ["k1", "k2"]
        assert repo.api_key("k1") == api_key("k1", "u-alice", 0)
        used = T0 + timedelta(hours=1)
        repo.touch_api_key("k1", used)
        found = repo.api_key("k1")
        assert found is not None and found.last_used_at == used
        assert repo.revoke_api_key("k1", used) is True
        assert repo.revoke_api_key("k1", used) is False
        found = repo.api_key("k1")
        assert found is not None and not found.active(used) and repo.api_key("k0") is None

    def test_revoke_credentials_counts_what_was_active(self, repo: UserRepository) -> None:
        repo.add_user(user("alice"))
        repo.add_user(user("bob"))
        repo.add_session(session("s1", "u-alice"))
        repo.add_session(session("s2", "u-alice"))
        repo.add_api_key(api_key("k1", "u-alice"))
        repo.add_session(session("sb", "u-bob"))
        repo.revoke_session("s2", T0)
        at = T0 + timedelta(minutes=1)
        assert repo.revoke_credentials("u-alice", at) == 2
        assert repo.revoke_credentials("u-alice", at) == 0
        found = repo.session("sb")
        assert found is not None and found.revoked_at is None

    # failed logins --------------------------------------------------------------

    def test_attempts_count_up_to_a_lock(self, repo: UserRepository) -> None:
        assert repo.failure_state("alice") == Attempt(True, 0, None)
        assert repo.begin_attempt("alice", T0, 3, 60) == Attempt(True, 1, None)
        assert repo.begin_attempt("alice", T0, 3, 60) == Attempt(True, 2, None)
        until = T0 + timedelta(seconds=60)
        assert repo.begin_attempt("alice", T0, 3, 60) == Attempt(True, 3, until)
        assert repo.begin_attempt("alice", T0, 3, 60) == Attempt(False, 3, until)
        assert repo.failure_state("alice") == Attempt(False, 3, until)
        assert repo.failure_state("bob") == Attempt(True, 0, None)

    def test_an_expired_lock_starts_a_new_count(self, repo: UserRepository) -> None:
        for _ in range(3):
            repo.begin_attempt("alice", T0, 3, 60)
        later = T0 + timedelta(seconds=60)
        assert repo.begin_attempt("alice", later, 3, 60) == Attempt(True, 1, None)

    def test_release_takes_back_an_attempt_and_its_lock(self, repo: UserRepository) -> None:
        for _ in range(3):
            repo.begin_attempt("alice", T0, 3, 60)
        repo.release_attempt("alice", 3)
        assert repo.failure_state("alice") == Attempt(True, 2, None)
        repo.clear_failures("alice")
        assert repo.failure_state("alice") == Attempt(True, 0, None)
        repo.release_attempt("alice", 3)  # nothing to release
        assert repo.failure_state("alice").failures == 0

    def test_concurrent_attempts_never_pass_the_threshold(self, repo: UserRepository) -> None:
        with ThreadPoolExecutor(max_workers=6) as pool:
            results = list(pool.map(lambda _: repo.begin_attempt("x", T0, 5, 60), range(20)))
        assert sum(r.allowed for r in results) == 5
        assert repo.failure_state("x").failures == 5

    def test_failures_are_counted_per_key_within_a_window(self, repo: UserRepository) -> None:
        for minute in (0, 5, 10):
            repo.note_failures(["client-a", "*"], T0 + timedelta(minutes=minute))
        repo.note_failures(["client-b", "*"], T0 + timedelta(minutes=12))
        assert repo.failures_since("client-a", T0 - timedelta(seconds=1)) == FailureWindow(3, T0)
        since = T0 + timedelta(minutes=4)
        assert repo.failures_since("client-a", since) == FailureWindow(2, T0 + timedelta(minutes=5))
        assert repo.failures_since("*", since).count == 3
        assert repo.failures_since("client-c", since) == FailureWindow(0, None)

    def test_purging_failures_keeps_recent_ones_and_running_locks(
        self, repo: UserRepository
    ) -> None:
        repo.note_failures(["client-a", "*"], T0)
        repo.note_failures(["client-a", "*"], T0 + timedelta(minutes=20))
        repo.begin_attempt("old", T0, 5, 60)
        for _ in range(3):
            repo.begin_attempt("locked", T0, 3, 3600)
        repo.begin_attempt("recent", T0 + timedelta(minutes=20), 5, 60)
        now = T0 + timedelta(minutes=30)
        assert repo.purge_failures(T0 + timedelta(minutes=15), now) == 3
        assert repo.failures_since("client-a", T0 - timedelta(seconds=1)).count == 1
        assert repo.failure_state("old") == Attempt(True, 0, None)
        assert repo.failure_state("locked").failures == 3
        assert repo.failure_state("recent").failures == 1
