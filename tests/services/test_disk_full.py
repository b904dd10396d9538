"""A full disk met by a service, injected through the project's own in-memory adapters:
one StorageFullError, nothing half-done (no staged or uncommitted generation folder, no
uploaded original without its document, no change without its audit event)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from tests.memory_wiring import memory_services
from xnai.adapters.memory import MemoryAuditLog, MemoryIndexStore, MemoryKeyRing, NumpyVectorIndex
from xnai.domain.errors import AuditStorageFullError, AuditUnavailableError, StorageFullError
from xnai.domain.rbac import LOCAL_ADMIN
from xnai.services.audit import Auditor, record_first
from xnai.services.disk import is_disk_full, refused_when_full

NOTE = b"# Newts\n\nThe great crested newt breeds in garden ponds in spring.\n"
OTHER = b"# Toads\n\nThe common toad walks back to the pond where it hatched.\n"


def enospc() -> OSError:
    return OSError(errno.ENOSPC, "No space left on device")


class FullAfter:
    """Raises ENOSPC from the ``n``-th call on (a disk that fills up)."""

    def __init__(self, n: int = 1) -> None:
        self.left = n - 1

    def __call__(self) -> None:
        if self.left <= 0:
            raise enospc()
        self.left -= 1


def test_disk_full_is_recognised_through_the_chain_of_causes() -> None:
    assert is_disk_full(enospc())
    assert is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    try:
        try:
            raise enospc()
        except OSError as exc:
            raise RuntimeError("writing the index") from exc
    except RuntimeError as wrapped:
        assert is_disk_full(wrapped)
    refused = pytest.raises(StorageFullError, match="the disk is full: the thing was not done")
    with refused, refused_when_full("the thing was not done"):
        raise enospc()
    with pytest.raises(PermissionError), refused_when_full("x"):
        raise PermissionError(errno.EACCES, "Permission denied")


def staged_folders(store: MemoryIndexStore) -> list[str]:
    return sorted(p.name for p in store.root.iterdir())


@pytest.mark.parametrize("stage", ["vectors", "publish"])
def test_an_ingest_that_fills_the_disk_leaves_no_generation_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stage: str
) -> None:
    s = memory_services(tmp_path / "index")
    s.ingestion.ingest_uploads([("toads.md", OTHER)], user="t", principal=LOCAL_ADMIN)
    store = s.kb.store
    assert isinstance(store, MemoryIndexStore)
    before, generation = staged_folders(store), s.kb.repo.current_generation()
    full = FullAfter()
    if stage == "vectors":
        save = NumpyVectorIndex.save
        monkeypatch.setattr(NumpyVectorIndex, "save", lambda self, d: (full(), save(self, d)))
    else:
        publish = MemoryIndexStore.publish
        monkeypatch.setattr(
            MemoryIndexStore, "publish", lambda self, d, g: (full(), publish(self, d, g))[1]
        )
    with pytest.raises(StorageFullError, match="the disk is full: the index could not be"):
        s.ingestion.ingest_uploads([("newts.md", NOTE)], user="t", principal=LOCAL_ADMIN)
    assert staged_folders(store) == before
    assert s.kb.repo.current_generation() == generation
    assert [d.source for d in s.kb.repo.documents()] == ["upload:toads.md"]
    # The original of the refused upload is gone; the committed one stays.
    assert len(s.originals._tokens) == 1
    assert not [e for e in s.audit.events if "upload:newts.md" in str(e["details"])]


def test_an_upload_whose_original_does_not_fit_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = memory_services(tmp_path / "index")
    s.ingestion.ingest_uploads([("toads.md", OTHER)], user="t", principal=LOCAL_ADMIN)
    keep, full = s.originals.keep, FullAfter(2)
    monkeypatch.setattr(s.originals, "keep", lambda name, data: (full(), keep(name, data))[1])
    with pytest.raises(StorageFullError, match="the uploaded files were not added"):
        s.ingestion.ingest_uploads(
            [("newts.md", NOTE), ("frogs.md", NOTE.replace(b"newt", b"frog"))],
            user="t",
            principal=LOCAL_ADMIN,
        )
    assert [d.source for d in s.kb.repo.documents()] == ["upload:toads.md"]
    assert len(s.originals._tokens) == 1  # the first of the two was kept, then forgotten


def test_a_pointer_the_full_disk_stops_after_the_commit_follows_at_the_next_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = memory_services(tmp_path / "index")
    full = FullAfter()
    set_pointer = MemoryIndexStore.set_pointer
    monkeypatch.setattr(
        MemoryIndexStore, "set_pointer", lambda self, g: (full(), set_pointer(self, g))
    )
    report = s.ingestion.ingest_uploads([("newts.md", NOTE)], user="t", principal=LOCAL_ADMIN)
    assert report.added == ("upload:newts.md",)  # committed: the change stands
    monkeypatch.setattr(MemoryIndexStore, "set_pointer", set_pointer)
    s.ingestion.ingest_uploads([("toads.md", OTHER)], user="t", principal=LOCAL_ADMIN)
    assert s.kb.store.read_pointer() == s.kb.repo.current_generation() == 2


def test_an_audit_trail_on_a_full_disk_refuses_the_change_as_storage_full() -> None:
    class FullLog(MemoryAuditLog):
        def append(self, event: object) -> int:  # type: ignore[override]
            raise enospc()

    auditor = Auditor(FullLog(MemoryKeyRing("audit")))
    with pytest.raises(AuditStorageFullError) as info:
        record_first(auditor, "user_created", action="create_user", resource="user:bob")
    assert str(info.value).startswith("the disk is full: the audit trail cannot be written")
    assert "nothing was changed" in str(info.value)
    assert isinstance(info.value, AuditUnavailableError | StorageFullError)


def test_an_audit_trail_that_fails_otherwise_stays_unavailable() -> None:
    class Gone(MemoryAuditLog):
        def append(self, event: object) -> int:  # type: ignore[override]
            raise FileNotFoundError(errno.ENOENT, "No such file or directory")

    with pytest.raises(AuditUnavailableError) as info:
        record_first(
            Auditor(Gone(MemoryKeyRing("audit"))),
            "user_created",
            action="create_user",
            resource="user:bob",
        )
    assert not isinstance(info.value, StorageFullError)
