"""The retention job removes what is older than the period from every index, and only that."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from xnai.adapters.memory.audit import RecordingAudit
from xnai.bootstrap import Container
from xnai.domain.access import AccessScope
from xnai.domain.models import SearchMode
from xnai.services.consistency import check
from xnai.services.retention import RetentionJob


def _ingest(c: Container, folder: Path, name: str, text: str) -> None:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    report = c.ingestion.ingest_files([path], user="tester")
    assert report.ok and report.added


def test_documents_past_retention_leave_every_index(container: Container, tmp_path: Path) -> None:
    _ingest(container, tmp_path, "old.txt", "Zebrafish regenerate their fins quickly.")
    audit = RecordingAudit()
    remembered: list[str] = []
    later = datetime.now(UTC) + timedelta(days=31)
    job = RetentionJob(
        container.kb,
        30,
        audit,
        purge_credentials=lambda now: 4 if now == later else -1,
        trim_audit=lambda cutoff: 2 if cutoff == later - timedelta(days=30) else -1,
        remember=remembered.append,
        clock=lambda: later,
    )
    assert job.overdue() == 1
    report = job.run(user_id="u_admin")
    assert len(report.documents_removed) == 1
    assert (report.sessions_purged, report.audit_lines_trimmed) == (4, 2)
    assert job.overdue() == 0
    snap = container.kb.snapshot
    assert not snap.documents and not snap.chunks and len(snap.vectors) == len(snap.lexical) == 0
    hits = container.retriever.search(
        "zebrafish fins", mode=SearchMode.HYBRID, top_k=5, scope=AccessScope.everything()
    )
    assert hits == []
    assert check(container.kb) == []
    assert remembered == [report.ran_at]
    [event] = audit.events
    assert event["event_type"] == "retention" and event["details"]["documents_removed"] == 1


def test_recent_documents_stay(container: Container, tmp_path: Path) -> None:
    _ingest(container, tmp_path, "new.txt", "Tardigrades survive in space.")
    job = RetentionJob(container.kb, 30, RecordingAudit())
    assert job.overdue() == 0
    report = job.run()
    assert report.documents_removed == ()
    assert len(container.kb.snapshot.documents) == 1


def test_remove_many_is_one_commit(container: Container, tmp_path: Path) -> None:
    for i in range(3):
        _ingest(container, tmp_path, f"d{i}.txt", f"Document number {i} about topic {i}.")
    before = container.kb.repo.current_generation()
    ids = [d.doc_id for d in container.kb.repo.documents()][:2]
    removed = container.kb.remove_many([*ids, "d_unknown", ids[0]])
    assert sorted(d.doc_id for d in removed) == sorted(ids)
    assert container.kb.repo.current_generation() == before + 1
    assert len(container.kb.snapshot.documents) == 1
    assert container.kb.remove_many(["d_unknown"]) == []
    assert container.kb.repo.current_generation() == before + 1
