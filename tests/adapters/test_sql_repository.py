"""The SQL repository on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.contracts.repository_contract import RepositoryContract
from xnai.adapters.storage.sql import SqlDocumentRepository, outage_errors, sqlite_url

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


class TestSqlite(RepositoryContract):
    @pytest.fixture
    def repo(self, tmp_path: Path) -> Iterator[SqlDocumentRepository]:
        r = SqlDocumentRepository(sqlite_url(tmp_path))
        yield r
        r.close()

    def test_database_file_is_owner_only(self, tmp_path: Path) -> None:
        SqlDocumentRepository(sqlite_url(tmp_path / "x")).close()
        assert (tmp_path / "x" / "xnai.db").stat().st_mode & 0o777 == 0o600


def _postgres_available() -> bool:
    try:
        with create_engine(PG_ADMIN).connect() as conn:
            conn.execute(text("select 1"))
        return True
    except Exception:
        return False


@pytest.mark.skipif(not _postgres_available(), reason="PostgreSQL on 127.0.0.1:5432 not running")
class TestPostgres(RepositoryContract):
    @pytest.fixture
    def repo(self) -> Iterator[SqlDocumentRepository]:
        name = f"xnai_test_{uuid.uuid4().hex[:10]}"
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        r = SqlDocumentRepository(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
        yield r
        r.close()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def test_ping_answers_and_names_the_backend(tmp_path: Path) -> None:
    repo = SqlDocumentRepository(sqlite_url(tmp_path))
    try:
        repo.ping()
        assert repo.backend == "sqlite"
    finally:
        repo.close()


def test_ping_of_an_unreachable_database_is_an_outage_error(tmp_path: Path) -> None:
    repo = SqlDocumentRepository(sqlite_url(tmp_path))
    repo.engine = create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none")
    try:
        with pytest.raises(outage_errors()):
            repo.ping()
        assert repo.backend == "postgresql"
    finally:
        repo.close()
