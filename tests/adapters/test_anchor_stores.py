"""Anchor stores: the contract on memory, SQLite and the real PostgreSQL server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from tests.contracts.anchor_store_contract import AnchorStoreContract
from xnai.adapters.memory import MemoryAnchorStore
from xnai.adapters.storage.sql import sqlite_url
from xnai.adapters.storage.sql_audit_anchor import SqlAnchorStore
from xnai.domain.audit import AnchorStore, AuditAnchor

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


class TestMemoryContract(AnchorStoreContract):
    @pytest.fixture
    def store(self) -> MemoryAnchorStore:
        return MemoryAnchorStore()


class TestSqliteContract(AnchorStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SqlAnchorStore]:
        store = SqlAnchorStore(sqlite_url(tmp_path))
        yield store
        store.engine.dispose()

    def reopen(self, store: AnchorStore) -> AnchorStore:
        assert isinstance(store, SqlAnchorStore)
        return SqlAnchorStore(store.engine)


def test_each_named_log_has_its_own_anchor(tmp_path: Path) -> None:
    one = SqlAnchorStore(sqlite_url(tmp_path))
    other = SqlAnchorStore(one.engine, name="other")
    one.save(AuditAnchor(1, "a" * 64))
    assert other.load() is None
    one.engine.dispose()


def _postgres() -> Engine | None:
    try:
        engine = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        return engine
    except Exception:
        return None


@pytest.mark.skipif(_postgres() is None, reason="PostgreSQL on 127.0.0.1:5432 not running")
class TestPostgresContract(AnchorStoreContract):
    @pytest.fixture
    def store(self) -> Iterator[SqlAnchorStore]:
        name = f"xnai_test_{uuid.uuid4().hex[:10]}"
        admin = _postgres()
        assert admin is not None
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
        yield SqlAnchorStore(engine)
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()

    def reopen(self, store: AnchorStore) -> AnchorStore:
        assert isinstance(store, SqlAnchorStore)
        return SqlAnchorStore(store.engine)
