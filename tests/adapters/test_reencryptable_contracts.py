"""The Reencryptable contract on every store a key rotation rewrites: encrypted files, the
SQL document repository (SQLite and PostgreSQL), the sealed MFA secrets over each user
repository, the answer bundles (files and memory), and the in-memory store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.bundles import sample_bundle
from tests.contracts.reencryptable_contract import Case, ReencryptableContract
from tests.contracts.repository_contract import doc
from tests.identity_fixtures import postgres_available, postgres_database
from xnai.adapters.memory import (
    MemoryAnswerBundles,
    MemoryEncryptedStore,
    MemoryKeyRing,
    MemoryUserRepository,
)
from xnai.adapters.security.encrypted_files import EncryptedFiles, read_decrypted
from xnai.adapters.storage.answer_bundles import FileAnswerBundles
from xnai.adapters.storage.sql import SqlDocumentRepository, sqlite_url
from xnai.adapters.storage.sql_identity import SqlIdentityRepository
from xnai.domain.bundles import AnswerBundleStore
from xnai.domain.identity import User, UserRepository
from xnai.domain.keys import USER_DATA
from xnai.domain.rbac import Role
from xnai.services.identity import SECRET_CONTEXT, SealedMfaSecrets

T0 = datetime(2026, 11, 26, tzinfo=UTC)


def memory_case() -> Case:
    ring = MemoryKeyRing()
    store = MemoryEncryptedStore(ring, USER_DATA)

    def write(values: dict[str, str]) -> None:
        for key, value in values.items():
            store.put(key, value.encode())

    def read() -> dict[str, str]:
        return {key: (store.get(key) or b"").decode() for key in ("a", "b", "c")}

    return Case(store, ring, write, read)


def files_case(root: Path) -> Case:
    ring = MemoryKeyRing()
    store = EncryptedFiles("index files", root, ["*.bin"], ring, USER_DATA)

    def write(values: dict[str, str]) -> None:
        for key, value in values.items():
            (root / f"{key}.bin").write_bytes(ring.encrypt(USER_DATA, value.encode()))

    def read() -> dict[str, str]:
        return {p.stem: read_decrypted(p, ring, USER_DATA).decode() for p in store.paths()}

    return Case(store, ring, write, read)


def documents_case(url: str) -> tuple[Case, SqlDocumentRepository]:
    ring = MemoryKeyRing()
    repo = SqlDocumentRepository(url, ring)

    def write(values: dict[str, str]) -> None:
        upserts = []
        for i, (key, value) in enumerate(values.items()):
            document, chunks = doc(key, f"/{key}", f"{i}" * 64, 1)
            upserts.append((replace(document, title=value), chunks))
        repo.commit(repo.current_generation() + 1, upserts, [])

    def read() -> dict[str, str]:
        return {d.doc_id: d.title for d in repo.documents()}

    return Case(repo, ring, write, read), repo


def mfa_case(repo: UserRepository) -> Case:
    ring = MemoryKeyRing()
    store = SealedMfaSecrets(repo, ring)

    def write(values: dict[str, str]) -> None:
        for key, value in values.items():
            repo.add_user(User(f"u-{key}", key, Role.VIEWER, "h", T0, T0))
            repo.set_mfa(f"u-{key}", ring.encrypt(SECRET_CONTEXT, value.encode()), True)

    def read() -> dict[str, str]:
        return {
            u.username: ring.decrypt(SECRET_CONTEXT, u.mfa_secret).decode()
            for u in repo.users()
            if u.mfa_secret is not None
        }

    return Case(store, ring, write, read)


def bundles_case(ring: MemoryKeyRing, store: AnswerBundleStore) -> Case:
    def write(values: dict[str, str]) -> None:
        for key, value in values.items():
            store.put(f"u-{key}", sample_bundle(key * 32, answer=value))

    def read() -> dict[str, str]:
        return {key: b.answer for key in "abc" for b in store.of_user(f"u-{key}")}

    assert isinstance(store, FileAnswerBundles | MemoryAnswerBundles)
    return Case(store, ring, write, read)


class TestMemoryContract(ReencryptableContract):
    @pytest.fixture
    def case(self) -> Case:
        return memory_case()


class TestEncryptedFilesContract(ReencryptableContract):
    @pytest.fixture
    def case(self, tmp_path: Path) -> Case:
        return files_case(tmp_path)


class TestFileAnswerBundlesContract(ReencryptableContract):
    @pytest.fixture
    def case(self, tmp_path: Path) -> Case:
        ring = MemoryKeyRing()
        return bundles_case(ring, FileAnswerBundles(tmp_path / "answers", ring))


class TestMemoryAnswerBundlesContract(ReencryptableContract):
    @pytest.fixture
    def case(self) -> Case:
        ring = MemoryKeyRing()
        return bundles_case(ring, MemoryAnswerBundles(ring))


class TestSqliteDocumentsContract(ReencryptableContract):
    @pytest.fixture
    def case(self, tmp_path: Path) -> Iterator[Case]:
        case, repo = documents_case(sqlite_url(tmp_path))
        yield case
        repo.close()


@pytest.mark.skipif(not postgres_available(), reason="PostgreSQL on 127.0.0.1:5432 not running")
class TestPostgresDocumentsContract(ReencryptableContract):
    @pytest.fixture
    def case(self) -> Iterator[Case]:
        with postgres_database() as url:
            case, repo = documents_case(url)
            yield case
            repo.close()


class TestMfaSecretsInMemoryContract(ReencryptableContract):
    @pytest.fixture
    def case(self) -> Case:
        return mfa_case(MemoryUserRepository())


class TestMfaSecretsInSqliteContract(ReencryptableContract):
    @pytest.fixture
    def case(self, tmp_path: Path) -> Iterator[Case]:
        repo = SqlIdentityRepository(f"sqlite:///{tmp_path / 'users.db'}")
        yield mfa_case(repo)
        repo.close()


@pytest.mark.skipif(not postgres_available(), reason="PostgreSQL on 127.0.0.1:5432 not running")
class TestMfaSecretsInPostgresContract(ReencryptableContract):
    @pytest.fixture
    def case(self) -> Iterator[Case]:
        with postgres_database() as url:
            repo = SqlIdentityRepository(url)
            yield mfa_case(repo)
            repo.close()
