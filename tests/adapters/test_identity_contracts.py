"""The identity ports' contracts: password hashers, one-time codes, and user repositories on
memory, SQLite and the real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.contracts.one_time_codes_contract import OneTimeCodesContract
from tests.contracts.password_hasher_contract import PasswordHasherContract
from tests.contracts.user_repository_contract import UserRepositoryContract
from tests.identity_fixtures import postgres_available, postgres_database
from xnai.adapters.memory import FastPasswordHasher, MemoryUserRepository, PlainTotpCodes
from xnai.adapters.security.passwords import Argon2Hasher
from xnai.adapters.security.totp import TotpCodes
from xnai.adapters.storage.sql_identity import SqlIdentityRepository
from xnai.domain.identity import OneTimeCodes, PasswordHasher, UserRepository


class TestArgon2Contract(PasswordHasherContract):
    @pytest.fixture
    def hasher(self) -> PasswordHasher:
        return Argon2Hasher(time_cost=2, memory_cost=1024, parallelism=1)

    @pytest.fixture
    def weaker(self) -> PasswordHasher:
        return Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1)


class TestFastHasherContract(PasswordHasherContract):
    @pytest.fixture
    def hasher(self) -> PasswordHasher:
        return FastPasswordHasher(iterations=2000)

    @pytest.fixture
    def weaker(self) -> PasswordHasher:
        return FastPasswordHasher(iterations=1000)


class TestPyotpContract(OneTimeCodesContract):
    @pytest.fixture
    def codes(self) -> OneTimeCodes:
        return TotpCodes()


class TestPlainTotpContract(OneTimeCodesContract):
    @pytest.fixture
    def codes(self) -> OneTimeCodes:
        return PlainTotpCodes()


def test_both_totp_adapters_compute_the_same_codes() -> None:
    pyotp_codes, plain = TotpCodes(), PlainTotpCodes()
    secret = plain.new_secret()
    at = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    assert plain.code_at(secret, at) == pyotp_codes.code_at(secret, at)


class TestMemoryRepositoryContract(UserRepositoryContract):
    @pytest.fixture
    def repo(self) -> UserRepository:
        return MemoryUserRepository()


class TestSqliteRepositoryContract(UserRepositoryContract):
    @pytest.fixture
    def repo(self, tmp_path: Path) -> Iterator[UserRepository]:
        repo = SqlIdentityRepository(f"sqlite:///{tmp_path / 'users.db'}")
        yield repo
        repo.close()


@pytest.mark.skipif(not postgres_available(), reason="PostgreSQL on 127.0.0.1:5432 not running")
class TestPostgresRepositoryContract(UserRepositoryContract):
    @pytest.fixture
    def repo(self) -> Iterator[UserRepository]:
        with postgres_database() as url:
            repo = SqlIdentityRepository(url)
            yield repo
            repo.close()
