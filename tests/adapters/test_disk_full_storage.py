"""A full disk under the file and SQL adapters: the audit log keeps no line its anchor does
not cover, and the database refuses with StorageFullError (on a real small tmpfs where one
can be mounted, else through the in-memory anchor store)."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.full_disk import fill, free, small_disk
from xnai.adapters.audit import JsonlAuditLog
from xnai.adapters.memory import MemoryAnchorStore
from xnai.adapters.security.keyring import FernetKeyRing
from xnai.adapters.storage.sql_identity import SqlIdentityRepository
from xnai.domain.audit import AuditAnchor
from xnai.domain.errors import StorageFullError
from xnai.domain.identity import User
from xnai.domain.rbac import Role


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    yield from small_disk(tmp_path)


def event(i: int) -> dict[str, object]:
    return {
        "timestamp": datetime(2024, 1, 1, tzinfo=UTC).isoformat(),
        "event_id": f"e{i}",
        "event_type": "user_created",
        "severity": "info",
        "source_ip": None,
        "user_id": "admin",
        "resource": f"user:u{i}",
        "action": "create_user",
        "success": True,
        "details": {},
        "compliance_flags": ["GDPR"],
    }


def keys(where: Path) -> FernetKeyRing:
    return FernetKeyRing.open(where / "keys" / "keyring.json", create=True)


def test_a_line_whose_anchor_cannot_be_written_is_cut_off_again(disk: Path) -> None:
    log = JsonlAuditLog(disk / "audit", keys(disk))
    log.append(event(1))
    lines = log.path.read_bytes()
    fill(disk)  # the next line fits the log file's last page, a new anchor file does not
    with pytest.raises(OSError) as info:
        log.append(event(2))
    assert info.value.errno == errno.ENOSPC
    assert log.path.read_bytes() == lines
    free(disk)
    assert log.verify().ok
    assert log.append(event(3)) == 2 and log.verify().ok


class FullAnchorStore(MemoryAnchorStore):
    """An anchor store on a database whose disk fills up after ``room`` saves."""

    def __init__(self, room: int) -> None:
        super().__init__()
        self.room = room

    def save(self, anchor: AuditAnchor) -> None:
        if self.room <= 0:
            raise StorageFullError("the disk is full: the database could not be written")
        self.room -= 1
        super().save(anchor)


def test_a_line_whose_database_anchor_cannot_be_saved_is_cut_off_again(tmp_path: Path) -> None:
    anchors = FullAnchorStore(room=2)  # the first anchor, then the first line's
    log = JsonlAuditLog(tmp_path / "audit", keys(tmp_path), anchors=anchors)
    log.append(event(1))
    lines, anchor_file = log.path.read_bytes(), log.anchor_path.read_bytes()
    with pytest.raises(StorageFullError):
        log.append(event(2))
    assert log.path.read_bytes() == lines
    assert log.anchor_path.read_bytes() == anchor_file
    anchors.room = 9
    assert log.verify().ok
    assert log.append(event(3)) == 2 and log.verify().ok


def test_a_database_on_a_full_disk_raises_storage_full_and_keeps_nothing(disk: Path) -> None:
    repo = SqlIdentityRepository(f"sqlite:///{disk / 'xnai.db'}")
    now = datetime(2024, 1, 1, tzinfo=UTC)

    def user(i: int) -> User:
        return User(f"u{i}", f"user{i}", Role.VIEWER, "x" * 2000, now, now)

    repo.add_user(user(0))
    fill(disk)
    with pytest.raises(StorageFullError, match="the disk is full: the database could not be"):
        for i in range(1, 200):  # a page or two may still fit the write-ahead log
            repo.add_user(user(i))
    stored = repo.count_users()
    free(disk)
    assert repo.count_users() == stored
    repo.add_user(user(500))
    assert repo.count_users() == stored + 1
