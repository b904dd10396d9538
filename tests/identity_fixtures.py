"""Shared pieces of the identity tests: a movable clock, services over real databases."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, text

from tests.clock import WALL_START, FakeClock
from xnai.adapters.memory.audit import RecordingAudit
from xnai.adapters.security.passwords import Argon2Hasher, CommonPasswords
from xnai.adapters.security.totp import TotpCodes
from xnai.adapters.storage.sql_identity import SqlIdentityRepository
from xnai.domain.ports import KeyRing
from xnai.services.auth import AuthPolicy, AuthService

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

# Real argon2id with the smallest cost: tests that create many users stay quick.
FAST_HASHER = Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1)
COMMON = CommonPasswords()


def make_service(
    url: str,
    *,
    clock: FakeClock | None = None,
    hasher: Any = FAST_HASHER,
    keyring: KeyRing | None = None,
    **policy: Any,
) -> AuthService:
    """An AuthService over the database at ``url`` with a recording audit sink."""
    return AuthService(
        SqlIdentityRepository(url),
        hasher,
        TotpCodes(),
        policy=AuthPolicy(**policy),
        audit=RecordingAudit(),
        clock=clock or FakeClock(WALL_START),
        keyring=keyring,
        is_common=COMMON,
    )


def postgres_available() -> bool:
    """Whether the PostgreSQL server of the test machine answers."""
    try:
        engine = create_engine(PG_ADMIN)
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return True
    except Exception:
        return False


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database; dropped afterwards."""
    name = f"xnai_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
