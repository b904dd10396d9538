"""Export and erasure over a real knowledge base; the subject's data sources are recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.memory_wiring import MemoryServices
from xnai.adapters.memory.audit import RecordingAudit
from xnai.domain.access import AccessScope
from xnai.domain.errors import NotFoundError
from xnai.domain.models import Document, SearchMode
from xnai.services.consistency import check
from xnai.services.privacy import PrivacyService, Subject, SubjectData

ALICE = Subject("u_alice", "alice")


class Records:
    """An in-memory account store that remembers what erasure asked of it."""

    def __init__(self) -> None:
        self.accounts = {"u_alice": {"username": "alice", "role": "editor"}}
        self.forgotten: list[str] = []
        self.originals: list[str] = []
        self.cache_cleared = 0

    def data(self) -> SubjectData:
        def find(ref: str) -> Subject | None:
            return ALICE if ref in ("u_alice", "alice") and "u_alice" in self.accounts else None

        def forget(s: Subject) -> None:
            self.forgotten.append(s.user_id)
            del self.accounts[s.user_id]

        def original(d: Document) -> int:
            self.originals.append(d.doc_id)
            return 1

        def clear() -> None:
            self.cache_cleared += 1

        return SubjectData(
            find=find,
            account=lambda s: dict(self.accounts[s.user_id]),
            audit_events=lambda s: [{"event_type": "login_success", "user_id": s.user_id}],
            forget_account=forget,
            pseudonymise_audit=lambda s: 7,
            forget_original=original,
            forget_cached=clear,
        )


def _ingest(c: MemoryServices, folder: Path, name: str, text: str, user: str) -> None:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    assert c.ingestion.ingest_files([path], user=user).ok


@pytest.fixture
def seeded(services: MemoryServices, tmp_path: Path) -> MemoryServices:
    _ingest(services, tmp_path, "a.txt", "CANARY-ALICE-41 axolotl gills regrow.", "u_alice")
    _ingest(services, tmp_path, "b.txt", "Bob writes about basalt columns.", "u_bob")
    return services


def test_export_holds_account_documents_and_events(seeded: MemoryServices) -> None:
    records, audit = Records(), RecordingAudit()
    service = PrivacyService(seeded.kb, records.data(), audit)
    out: dict[str, Any] = service.export("alice", actor="u_admin")
    assert out["subject"] == {"user_id": "u_alice", "username": "alice"}
    assert out["account"]["role"] == "editor"
    assert [d["source"].rsplit("/", 1)[-1] for d in out["documents"]] == ["a.txt"]
    assert out["audit_events"][0]["event_type"] == "login_success"
    assert audit.events[-1]["event_type"] == "data_export"


def test_erasure_leaves_nothing_a_query_can_reach(seeded: MemoryServices) -> None:
    records, audit = Records(), RecordingAudit()
    service = PrivacyService(seeded.kb, records.data(), audit)
    report = service.erase("u_alice", actor="u_admin")
    assert len(report.documents_removed) == 1 and report.audit_lines_pseudonymised == 7
    assert records.forgotten == ["u_alice"] and records.originals == list(report.documents_removed)
    assert records.cache_cleared == 1
    for mode in SearchMode:
        hits = seeded.retriever.search(
            "CANARY-ALICE-41 axolotl", mode=mode, top_k=20, scope=AccessScope.everything()
        )
        assert all("CANARY-ALICE" not in h.chunk.text for h in hits)
    assert [d.ingested_by for d in seeded.kb.repo.documents()] == ["u_bob"]
    assert check(seeded.kb) == []
    assert audit.events[-1]["event_type"] == "data_erasure"
    with pytest.raises(NotFoundError):
        service.export("alice")
