"""The SQL repository with a key ring, on SQLite and on the real PostgreSQL server: the
repository contract still holds, text columns hold tokens, tampering is detected and a
re-encryption rewrites every row under the current key."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.adapters.test_sql_repository import PG_ADMIN, _postgres_available
from tests.contracts.repository_contract import RepositoryContract, doc
from xnai.adapters.security.keyring import FernetKeyRing
from xnai.adapters.storage.sql import SqlDocumentRepository, database_has_rows, sqlite_url
from xnai.domain.errors import IntegrityError


@pytest.fixture
def keyring(tmp_path: Path) -> FernetKeyRing:
    return FernetKeyRing.open(tmp_path / "keys" / "master.key", create=True)


@pytest.fixture
def sqlite_repo(tmp_path: Path, keyring: FernetKeyRing) -> Iterator[SqlDocumentRepository]:
    r = SqlDocumentRepository(sqlite_url(tmp_path / "db"), keyring)
    yield r
    r.close()


@pytest.fixture
def plain_repo(tmp_path: Path, keyring: FernetKeyRing) -> Iterator[SqlDocumentRepository]:
    """Encryption switched off: the same repository, text passing through the key ring."""
    off = FernetKeyRing.open(tmp_path / "keys" / "master.key", enabled=False)
    r = SqlDocumentRepository(sqlite_url(tmp_path / "plain"), off)
    yield r
    r.close()


@pytest.fixture
def postgres_repo(keyring: FernetKeyRing) -> Iterator[SqlDocumentRepository]:
    if not _postgres_available():
        pytest.skip("PostgreSQL on 127.0.0.1:5432 not running")
    name = f"xnai_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    r = SqlDocumentRepository(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", keyring)
    yield r
    r.close()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


BACKENDS = ["sqlite", "postgres"]
CONTRACT_BACKENDS = [*BACKENDS, "plain"]


def _backend(request: pytest.FixtureRequest) -> SqlDocumentRepository:
    repository: SqlDocumentRepository = request.getfixturevalue(f"{request.param}_repo")
    return repository


@pytest.fixture(params=BACKENDS)
def repo(request: pytest.FixtureRequest) -> SqlDocumentRepository:
    return _backend(request)


class TestEncryptedContract(RepositoryContract):
    """The repository contract on both backends encrypting, and with encryption off."""

    @pytest.fixture(params=CONTRACT_BACKENDS)
    def repo(self, request: pytest.FixtureRequest) -> SqlDocumentRepository:
        return _backend(request)


def raw(repo: SqlDocumentRepository, sql: str) -> list[tuple[str, ...]]:
    with repo.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(sql))]


def test_text_columns_hold_tokens_and_plain_columns_stay_plain(
    repo: SqlDocumentRepository,
) -> None:
    document, chunks = doc("a", "/lib/a.md", "s" * 64, 2)
    repo.commit(1, [(document, chunks)], [])
    ((title, source, sha),) = raw(repo, "SELECT title, source, sha256 FROM documents")
    assert title.startswith("gAAAAA") and "Title" not in title
    assert (source, sha) == ("/lib/a.md", "s" * 64)  # lookups and dedupe need these
    for chunk_text, heading in raw(repo, "SELECT text, heading FROM chunks"):
        assert chunk_text.startswith("gAAAAA") and heading.startswith("gAAAAA")
    assert repo.chunks() == chunks and repo.document("a") == document


def test_a_flipped_byte_in_a_row_is_an_integrity_error(repo: SqlDocumentRepository) -> None:
    repo.commit(1, [doc("a", "/a", "s" * 64, 1)], [])
    ((token,),) = raw(repo, "SELECT title FROM documents")
    bad = bytearray(base64.urlsafe_b64decode(token))
    bad[-40] ^= 0x01
    with repo.engine.begin() as conn:
        conn.execute(
            text("UPDATE documents SET title = :t"),
            {"t": base64.urlsafe_b64encode(bytes(bad)).decode()},
        )
    with pytest.raises(IntegrityError, match="database row a"):
        repo.documents()
    with pytest.raises(IntegrityError):
        repo.document_by_source("/a")


def test_reencrypt_rewrites_every_row_under_the_new_key(
    repo: SqlDocumentRepository, keyring: FernetKeyRing
) -> None:
    document, chunks = doc("a", "/a", "s" * 64, 3)
    repo.commit(1, [(document, chunks)], [])
    before = raw(repo, "SELECT text FROM chunks ORDER BY chunk_id")
    new = keyring.add_key()
    assert repo.reencrypt() == 1 + 3
    after = raw(repo, "SELECT text FROM chunks ORDER BY chunk_id")
    assert len(after) == 3 and not set(before) & set(after)
    assert len(keyring.retire_previous()) == 1 and keyring.current_key_id == new.key_id
    assert repo.chunks() == chunks and repo.documents() == [document]


def test_database_has_rows(repo: SqlDocumentRepository) -> None:
    assert not database_has_rows(repo.url)
    repo.commit(1, [doc("a", "/a", "s" * 64, 1)], [])
    assert database_has_rows(repo.url)
    assert not database_has_rows(sqlite_url(Path("/nonexistent/dir")))
