"""Login throttling per client address and overall, beside the per-name lockout, over a real
database shared by every instance of the service."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.clock import WALL_START, FakeClock
from tests.identity_fixtures import make_service, postgres_available, postgres_database
from tests.services.test_auth import PASSWORD, CountingHasher, add, events
from xnai.adapters.storage.sql import sqlite_url
from xnai.adapters.storage.sql_identity import login_failures, login_throttle
from xnai.domain.errors import AccountLockedError, AuthenticationError, LoginThrottledError
from xnai.services.auth import AuthService

ATTACKER = "203.0.113.66"
OWNER = "198.51.100.7"
WRONG = "wrong password 123"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(WALL_START)


@pytest.fixture(params=["sqlite", "postgres"])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "data")
        return
    if not postgres_available():
        pytest.skip("PostgreSQL on 127.0.0.1:5432 not running")
    with postgres_database() as url:
        yield url


def service(url: str, clock: FakeClock, **policy: Any) -> AuthService:
    policy = {"login_client_failures": 10, "login_global_failures": 30, **policy}
    return make_service(url, clock=clock, **policy)


def fail(auth: AuthService, name: str, ip: str | None) -> type[Exception]:
    with pytest.raises(AuthenticationError) as info:
        auth.login(name, WRONG, source_ip=ip)
    return type(info.value)


def rows(auth: AuthService, table: Any) -> int:
    engine = auth.repo.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_spraying_across_usernames_is_throttled_per_client(any_db: str, clock: FakeClock) -> None:
    auth = service(any_db, clock)
    add(auth, "alice")
    # One guess per name never reaches a name's lockout, but the address runs out.
    assert {fail(auth, f"user{i}", ATTACKER) for i in range(10)} == {AuthenticationError}
    with pytest.raises(LoginThrottledError) as info:
        auth.login("alice", PASSWORD, source_ip=ATTACKER)  # even the right password waits
    assert 1 <= info.value.retry_after <= 900
    assert isinstance(info.value, AccountLockedError)  # answered 429 with Retry-After
    throttled = events(auth, "login_throttled")
    assert throttled and throttled[-1]["source_ip"] == ATTACKER
    assert throttled[-1]["details"]["scope"] == "client"
    assert auth.login("alice", PASSWORD, source_ip=OWNER).token  # other addresses are fine
    clock.advance(901)  # a sliding window: the failures age out
    assert auth.login("alice", PASSWORD, source_ip=ATTACKER).token


def test_ipv6_clients_are_counted_by_their_64_bit_prefix(any_db: str, clock: FakeClock) -> None:
    auth = service(any_db, clock)
    for i in range(10):
        fail(auth, f"user{i}", f"2001:db8:1:2::{i + 1:x}")
    assert fail(auth, "user99", "2001:db8:1:2:ffff::1") is LoginThrottledError
    assert fail(auth, "user99", "2001:db8:1:3::1") is AuthenticationError


def test_global_login_throttle(any_db: str, clock: FakeClock) -> None:
    auth = service(any_db, clock)
    add(auth, "alice")
    for n in range(30):  # thirty addresses, one failure each: no address is over its limit
        fail(auth, f"user{n}", f"10.0.{n}.1")
    assert fail(auth, "user0", "10.0.0.1") is LoginThrottledError
    assert events(auth, "login_throttled")[-1]["details"]["scope"] == "global"
    # A client with a clean record keeps its attempt, so the owner can still sign in.
    assert auth.login("alice", PASSWORD, source_ip=OWNER).token
    clock.advance(901)
    assert fail(auth, "user0", "10.0.0.1") is AuthenticationError


def test_admin_is_not_locked_out_forever_by_one_client(any_db: str, clock: FakeClock) -> None:
    auth = service(any_db, clock)
    add(auth, "root")
    for _ in range(4):
        assert fail(auth, "root", ATTACKER) is AuthenticationError
    assert fail(auth, "root", ATTACKER) is AccountLockedError  # the name is locked
    for _ in range(12):  # the attacker keeps at it, every few minutes, for an hour
        clock.advance(300)
        fail(auth, "root", ATTACKER)
        assert auth.login("root", PASSWORD, source_ip=OWNER).token  # the owner still gets in


def test_a_locked_name_still_refuses_the_client_that_failed(any_db: str, clock: FakeClock) -> None:
    auth = service(any_db, clock)
    add(auth, "root")
    for _ in range(5):
        fail(auth, "root", ATTACKER)
    with pytest.raises(AccountLockedError):
        auth.login("root", PASSWORD, source_ip=ATTACKER)
    with pytest.raises(AccountLockedError):
        auth.login("root", PASSWORD)  # no address (the chat's sign-in): the lock holds


def test_old_login_failures_are_purged(any_db: str, clock: FakeClock) -> None:
    auth = service(any_db, clock, login_client_failures=1000, login_global_failures=1000)
    for i in range(40):
        fail(auth, f"nobody{i}", ATTACKER)
    assert rows(auth, login_failures) == 40
    assert rows(auth, login_throttle) == 80  # the address and the global count
    clock.advance(901)
    fail(auth, "someone", ATTACKER)
    assert rows(auth, login_failures) == 1
    assert rows(auth, login_throttle) == 2
    clock.advance(901)
    assert auth.purge_login_failures() == 3  # also on the retention job's schedule
    assert rows(auth, login_failures) == 0 and rows(auth, login_throttle) == 0


def test_a_purge_keeps_a_lock_that_is_still_running(any_db: str, clock: FakeClock) -> None:
    auth = service(any_db, clock, lockout_duration=3600)
    add(auth, "alice")
    for _ in range(5):
        fail(auth, "alice", ATTACKER)
    clock.advance(1800)
    auth.purge_login_failures()
    with pytest.raises(AccountLockedError):
        auth.login("alice", PASSWORD)


def test_unknown_usernames_do_not_cost_a_full_hash_each(any_db: str, clock: FakeClock) -> None:
    hasher = CountingHasher(time_cost=1, memory_cost=1024, parallelism=1)
    auth = make_service(
        any_db, clock=clock, hasher=hasher, login_client_failures=10, login_global_failures=30
    )
    outcomes = [fail(auth, f"ghost{i}", ATTACKER) for i in range(200)]
    assert outcomes.count(AuthenticationError) == 10
    assert outcomes.count(LoginThrottledError) == 190
    assert hasher.verifications <= 11  # the dummy hash is made once, then one check each
    flood = [fail(auth, f"ghost{i}", f"10.1.{i // 250}.{i % 250}") for i in range(60)]
    # Past the global limit a fresh address still gets one guess (so the owner can sign in),
    assert flood.count(AuthenticationError) == 60
    again = [fail(auth, f"ghost{i}", f"10.1.0.{i}") for i in range(30)]
    assert set(again) == {LoginThrottledError}  # and no second one while the flood lasts


def test_throttling_is_shared_by_two_instances_on_one_database(
    any_db: str, clock: FakeClock
) -> None:
    first, second = service(any_db, clock), service(any_db, clock)
    add(first, "alice")
    for i in range(5):
        fail(first, f"user{i}", ATTACKER)
        fail(second, f"user{i + 5}", ATTACKER)
    assert fail(first, "alice", ATTACKER) is LoginThrottledError
    assert fail(second, "alice", ATTACKER) is LoginThrottledError
    assert second.login("alice", PASSWORD, source_ip=OWNER).token
