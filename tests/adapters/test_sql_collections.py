"""Collection stores: the contract on memory, SQLite and the real PostgreSQL server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from tests.contracts.collection_store_contract import CollectionStoreContract
from xnai.adapters.memory.access import MemoryCollectionStore
from xnai.adapters.storage.sql import SqlDocumentRepository, sqlite_url
from xnai.adapters.storage.sql_collections import SqlCollectionStore
from xnai.domain.access import DEFAULT_COLLECTION, Collection, default_collection

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


class TestMemoryContract(CollectionStoreContract):
    @pytest.fixture
    def store(self) -> MemoryCollectionStore:
        return MemoryCollectionStore()


class TestSqliteContract(CollectionStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SqlCollectionStore]:
        repo = SqlDocumentRepository(sqlite_url(tmp_path))
        yield SqlCollectionStore(repo.engine)
        repo.close()


def test_a_new_database_gets_the_default_collection_for_every_role(tmp_path: Path) -> None:
    repo = SqlDocumentRepository(sqlite_url(tmp_path))
    store = SqlCollectionStore(repo.engine)
    assert store.list() == [default_collection()]
    default = store.get(DEFAULT_COLLECTION)
    assert default is not None
    assert set(default.readable_roles) == {"viewer", "editor", "admin", "system"}
    assert default.writable_roles == ("editor",)
    repo.close()


def test_default_is_seeded_once_so_an_admin_may_change_or_remove_it(tmp_path: Path) -> None:
    repo = SqlDocumentRepository(sqlite_url(tmp_path))
    store = SqlCollectionStore(repo.engine)
    store.replace(Collection(DEFAULT_COLLECTION, readable_roles=("editor",)))
    reopened = SqlCollectionStore(repo.engine)
    assert reopened.get(DEFAULT_COLLECTION) == Collection(
        DEFAULT_COLLECTION, readable_roles=("editor",)
    )
    reopened.delete(DEFAULT_COLLECTION)
    assert SqlCollectionStore(repo.engine).get(DEFAULT_COLLECTION) is None
    repo.close()


def test_lists_are_stored_sorted_without_duplicates(tmp_path: Path) -> None:
    repo = SqlDocumentRepository(sqlite_url(tmp_path))
    store = SqlCollectionStore(repo.engine)
    store.create(Collection("x", readable_users=("carol", "alice", "carol")))
    found = store.get("x")
    assert found is not None and found.readable_users == ("alice", "carol")
    repo.close()


def _postgres() -> Engine | None:
    try:
        engine = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        return engine
    except Exception:
        return None


@pytest.mark.skipif(_postgres() is None, reason="PostgreSQL on 127.0.0.1:5432 not running")
class TestPostgresContract(CollectionStoreContract):
    @pytest.fixture
    def store(self) -> Iterator[SqlCollectionStore]:
        name = f"xnai_test_{uuid.uuid4().hex[:10]}"
        admin = _postgres()
        assert admin is not None
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
        store = SqlCollectionStore(engine)
        assert store.list() == [default_collection()]
        yield store
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def test_grants_by_name_of_older_versions_become_user_ids_once(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from xnai.adapters.storage.sql_identity import SqlIdentityRepository
    from xnai.domain.identity import User
    from xnai.domain.rbac import Role

    repo = SqlDocumentRepository(sqlite_url(tmp_path))
    old = SqlCollectionStore(repo.engine)  # a database from before accounts existed
    old.create(Collection("team", readable_users=("alice", "ghost"), writable_users=("u-bob",)))
    identity = SqlIdentityRepository(repo.engine)
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    for user_id, name in (("u-alice", "alice"), ("u-bob", "bob")):
        identity.add_user(User(user_id, name, Role.VIEWER, "x", t0, t0))
    store = SqlCollectionStore(repo.engine)
    team = store.get("team")
    # alice's name became her id; a name of no account ("ghost") is dropped, so a later
    # account of that name inherits nothing.
    assert team == Collection("team", readable_users=("u-alice",), writable_users=("u-bob",))
    store.replace(Collection("team", readable_users=("carol",)))
    assert SqlCollectionStore(repo.engine).get("team") == Collection(
        "team", readable_users=("carol",)
    )  # once only
    repo.close()
