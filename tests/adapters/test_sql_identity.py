"""The SQL identity repository on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest

from tests.identity_fixtures import postgres_available, postgres_database
from xnai.adapters.storage.sql import sqlite_url
from xnai.adapters.storage.sql_identity import SqlIdentityRepository
from xnai.domain.errors import ConflictError
from xnai.domain.identity import ApiKeyRecord, SessionRecord, User
from xnai.domain.rbac import Role

T = TypeVar("T")
NOW = datetime(2026, 11, 26, 9, 0, 0, tzinfo=UTC)


def user(name: str, role: Role = Role.VIEWER) -> User:
    return User(f"u_{name}", name, role, f"hash-of-{name}", NOW, NOW)


def in_parallel(n: int, fn: Callable[[int], T]) -> list[T]:
    """Run ``fn(i)`` in ``n`` threads released at the same instant."""
    barrier = threading.Barrier(n)
    results: list[T | None] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        results[i] = fn(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results  # type: ignore[return-value]


class IdentityContract:
    """Subclass and provide a ``repo`` fixture."""

    @pytest.fixture
    def repo(self) -> SqlIdentityRepository:
        raise NotImplementedError  # pragma: no cover - every subclass overrides it

    def test_users_round_trip_and_names_are_unique(self, repo: SqlIdentityRepository) -> None:
        repo.add_user(user("alice", Role.ADMIN))
        repo.add_user(user("bob"))
        with pytest.raises(ConflictError):
            repo.add_user(User("u_other", "alice", Role.VIEWER, "h", NOW, NOW))
        assert repo.user_by_name("alice") == user("alice", Role.ADMIN)
        assert repo.user("u_bob") == user("bob")
        assert [u.username for u in repo.users()] == ["alice", "bob"]
        assert repo.count_users() == 2
        assert repo.user("u_nobody") is None

    def test_last_enabled_admin_cannot_be_demoted_or_disabled(
        self, repo: SqlIdentityRepository
    ) -> None:
        repo.add_user(user("root", Role.ADMIN))
        repo.add_user(user("carol"))
        assert not repo.set_role("u_root", Role.EDITOR)
        assert not repo.set_enabled("u_root", False)
        assert repo.set_role("u_carol", Role.ADMIN)
        assert repo.set_enabled("u_root", False)  # carol is still an enabled admin
        assert not repo.set_role("u_carol", Role.VIEWER)
        assert repo.set_enabled("u_root", True)
        assert repo.set_role("u_carol", Role.VIEWER)
        assert repo.user("u_carol").role is Role.VIEWER  # type: ignore[union-attr]

    def test_two_admins_demoting_each_other_at_once_leave_one(
        self, repo: SqlIdentityRepository
    ) -> None:
        repo.add_user(user("a1", Role.ADMIN))
        repo.add_user(user("a2", Role.ADMIN))
        for _ in range(5):
            done = in_parallel(2, lambda i: repo.set_role(f"u_a{i + 1}", Role.EDITOR))
            assert done.count(True) == 1
            admins = [u for u in repo.users() if u.role is Role.ADMIN and u.enabled]
            assert len(admins) == 1
            for u in repo.users():
                repo.set_role(u.user_id, Role.ADMIN)

    def test_a_totp_step_is_used_once_even_in_parallel(self, repo: SqlIdentityRepository) -> None:
        repo.add_user(user("alice"))
        assert in_parallel(10, lambda _: repo.use_totp_step("u_alice", 1000)).count(True) == 1
        assert not repo.use_totp_step("u_alice", 999)
        assert repo.use_totp_step("u_alice", 1001)

    def test_mfa_secret_storage(self, repo: SqlIdentityRepository) -> None:
        repo.add_user(user("alice"))
        repo.use_totp_step("u_alice", 5)
        repo.set_mfa("u_alice", b"sealed", enrolled=False)
        u = repo.user("u_alice")
        assert u is not None and u.mfa_secret == b"sealed" and not u.mfa_enrolled
        assert u.mfa_last_step is None
        repo.set_mfa("u_alice", b"sealed", enrolled=True)
        repo.use_totp_step("u_alice", 7)
        repo.replace_mfa_secret("u_alice", b"resealed")
        u = repo.user("u_alice")
        assert u is not None and (u.mfa_secret, u.mfa_enrolled, u.mfa_last_step) == (
            b"resealed",
            True,
            7,
        )

    def test_sessions_and_keys_are_revoked_together(self, repo: SqlIdentityRepository) -> None:
        repo.add_user(user("alice"))
        repo.add_user(user("bob"))
        for i, owner in enumerate(["u_alice", "u_alice", "u_bob"]):
            repo.add_session(SessionRecord(f"s{i}", owner, "h" * 64, NOW, NOW))
            repo.add_api_key(ApiKeyRecord(f"k{i}", owner, f"key {i}", "h" * 64, NOW))
        later = NOW + timedelta(minutes=5)
        assert repo.revoke_credentials("u_alice", later) == 4
        assert repo.revoke_credentials("u_alice", later) == 0
        assert repo.session("s0").revoked_at == later  # type: ignore[union-attr]
        assert repo.api_key("k1").revoked_at == later  # type: ignore[union-attr]
        assert repo.session("s2").revoked_at is None  # type: ignore[union-attr]
        assert [k.key_id for k in repo.api_keys("u_alice")] == ["k0", "k1"]

    def test_session_touch_and_purge(self, repo: SqlIdentityRepository) -> None:
        repo.add_user(user("alice"))
        repo.add_session(SessionRecord("s1", "u_alice", "h" * 64, NOW, NOW))
        repo.add_session(SessionRecord("s2", "u_alice", "h" * 64, NOW, NOW))
        repo.touch_session("s1", NOW + timedelta(hours=2))
        repo.touch_session("s1", NOW + timedelta(hours=1))  # never moves back
        assert repo.session("s1").last_seen_at == NOW + timedelta(hours=2)  # type: ignore[union-attr]
        assert repo.purge_sessions(NOW + timedelta(hours=1)) == 1
        assert repo.session("s2") is None and repo.session("s1") is not None

    def test_attempts_count_lock_and_expire(self, repo: SqlIdentityRepository) -> None:
        counts = [repo.begin_attempt("k", NOW, 3, 60) for _ in range(3)]
        assert [(a.allowed, a.failures) for a in counts] == [(True, 1), (True, 2), (True, 3)]
        assert counts[2].locked_until == NOW + timedelta(seconds=60)  # the third one locks
        refused = repo.begin_attempt("k", NOW + timedelta(seconds=59), 3, 60)
        assert not refused.allowed and refused.failures == 3
        fresh = repo.begin_attempt("k", NOW + timedelta(seconds=60), 3, 60)
        assert fresh.allowed and fresh.failures == 1 and fresh.locked_until is None
        repo.clear_failures("k")
        assert repo.failure_state("k").failures == 0

    def test_release_takes_back_one_attempt_and_its_lock(self, repo: SqlIdentityRepository) -> None:
        repo.begin_attempt("k", NOW, 2, 60)
        locking = repo.begin_attempt("k", NOW, 2, 60)
        assert locking.locked_until is not None
        repo.release_attempt("k", 2)
        state = repo.failure_state("k")
        assert state.failures == 1 and state.locked_until is None
        assert repo.begin_attempt("k", NOW, 2, 60).allowed

    def test_twenty_parallel_attempts_count_exactly(self, repo: SqlIdentityRepository) -> None:
        results = in_parallel(20, lambda _: repo.begin_attempt("name", NOW, 5, 900))
        allowed = sorted(a.failures for a in results if a.allowed)
        assert allowed == [1, 2, 3, 4, 5]  # every slot handed out once, none twice
        assert sum(not a.allowed for a in results) == 15
        state = repo.failure_state("name")
        assert state.failures == 5 and state.locked_until == NOW + timedelta(seconds=900)

    def test_counts_survive_a_restart(self, repo: SqlIdentityRepository) -> None:
        for _ in range(2):
            repo.begin_attempt("k", NOW, 2, 60)
        again = SqlIdentityRepository(repo.engine.url.render_as_string(hide_password=False))
        try:
            assert not again.begin_attempt("k", NOW, 2, 60).allowed
        finally:
            again.close()


class TestSqlite(IdentityContract):
    @pytest.fixture
    def repo(self, tmp_path: Path) -> Iterator[SqlIdentityRepository]:
        r = SqlIdentityRepository(sqlite_url(tmp_path))
        yield r
        r.close()


@pytest.mark.skipif(not postgres_available(), reason="PostgreSQL on 127.0.0.1:5432 not running")
class TestPostgres(IdentityContract):
    @pytest.fixture
    def repo(self) -> Iterator[SqlIdentityRepository]:
        with postgres_database() as url:
            r = SqlIdentityRepository(url)
            yield r
            r.close()
