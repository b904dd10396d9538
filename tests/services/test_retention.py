"""The retention job removes what is older than the period from every index, and only that."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.memory_wiring import MemoryServices
from xnai.adapters.memory.audit import RecordingAudit
from xnai.domain.access import AccessScope
from xnai.domain.models import SearchMode
from xnai.services.consistency import check
from xnai.services.retention import RetentionJob


def _ingest(c: MemoryServices, folder: Path, name: str, text: str) -> None:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    report = c.ingestion.ingest_files([path], user="tester")
    assert report.ok and report.added


def test_documents_past_retention_leave_every_index(
    services: MemoryServices, tmp_path: Path
) -> None:
    _ingest(services, tmp_path, "old.txt", "Zebrafish regenerate their fins quickly.")
    audit = RecordingAudit()
    remembered: list[str] = []
    later = datetime.now(UTC) + timedelta(days=31)
    job = RetentionJob(
        services.kb,
        30,
        audit,
        purge_credentials=lambda now: 4 if now == later else -1,
        trim_audit=lambda cutoff: 2 if cutoff == later - timedelta(days=30) else -1,
        purge_answers=lambda cutoff: 3 if cutoff == later - timedelta(days=30) else -1,
        remember=remembered.append,
        clock=lambda: later,
    )
    assert job.overdue() == 1
    report = job.run(user_id="u_admin")
    assert len(report.documents_removed) == 1
    assert (report.sessions_purged, report.audit_lines_trimmed) == (4, 2)
    assert report.answer_bundles_purged == 3 and report.as_dict()["answer_bundles_purged"] == 3
    assert job.overdue() == 0
    snap = services.kb.snapshot
    assert not snap.documents and not snap.chunks and len(snap.vectors) == len(snap.lexical) == 0
    hits = services.retriever.search(
        "zebrafish fins", mode=SearchMode.HYBRID, top_k=5, scope=AccessScope.everything()
    )
    assert hits == []
    assert check(services.kb) == []
    assert remembered == [report.ran_at]
    [event] = audit.events
    assert event["event_type"] == "retention" and event["details"]["documents_removed"] == 1
    assert event["details"]["answer_bundles_purged"] == 3


def test_recent_documents_stay(services: MemoryServices, tmp_path: Path) -> None:
    _ingest(services, tmp_path, "new.txt", "Tardigrades survive in space.")
    job = RetentionJob(services.kb, 30, RecordingAudit())
    assert job.overdue() == 0
    report = job.run()
    assert report.documents_removed == ()
    assert len(services.kb.snapshot.documents) == 1


def test_remove_many_is_one_commit(services: MemoryServices, tmp_path: Path) -> None:
    for i in range(3):
        _ingest(services, tmp_path, f"d{i}.txt", f"Document number {i} about topic {i}.")
    before = services.kb.repo.current_generation()
    ids = [d.doc_id for d in services.kb.repo.documents()][:2]
    removed = services.kb.remove_many([*ids, "d_unknown", ids[0]])
    assert sorted(d.doc_id for d in removed) == sorted(ids)
    assert services.kb.repo.current_generation() == before + 1
    assert len(services.kb.snapshot.documents) == 1
    assert services.kb.remove_many(["d_unknown"]) == []
    assert services.kb.repo.current_generation() == before + 1
