"""The AuditSink and AuditLog contracts: the recording sink, the Auditor over each log, the
JSON Lines file log and the in-memory log."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.contracts.audit_log_contract import AuditLogContract, MakeLog, event
from tests.contracts.audit_sink_contract import AuditSinkContract, Sink
from xnai.adapters.audit import JsonlAuditLog
from xnai.adapters.memory import MemoryAuditLog, MemoryKeyRing, RecordingAudit
from xnai.adapters.security.keyring import FernetKeyRing
from xnai.domain.keys import RotatableKeyRing
from xnai.services.audit import Auditor


def _from_log(auditor: Auditor) -> Sink:
    return auditor, lambda: auditor.events


class TestRecordingSinkContract(AuditSinkContract):
    @pytest.fixture
    def sink(self) -> Sink:
        audit = RecordingAudit()
        return audit, lambda: audit.events


class TestAuditorOverMemoryLogContract(AuditSinkContract):
    @pytest.fixture
    def sink(self) -> Sink:
        return _from_log(Auditor(MemoryAuditLog(MemoryKeyRing())))


class TestAuditorOverFileLogContract(AuditSinkContract):
    @pytest.fixture
    def sink(self, tmp_path: Path) -> Sink:
        ring = FernetKeyRing.open(tmp_path / "keys" / "master.key", create=True)
        return _from_log(Auditor(JsonlAuditLog(tmp_path / "audit", ring)))


class TestFileLogContract(AuditLogContract):
    @pytest.fixture
    def ring(self, tmp_path: Path) -> RotatableKeyRing:
        return FernetKeyRing.open(tmp_path / "keys" / "master.key", create=True)

    @pytest.fixture
    def make_log(self, tmp_path: Path) -> MakeLog:
        return lambda ring: JsonlAuditLog(tmp_path / "audit", ring)


class TestMemoryLogContract(AuditLogContract):
    @pytest.fixture
    def ring(self) -> RotatableKeyRing:
        return MemoryKeyRing()

    @pytest.fixture
    def make_log(self) -> MakeLog:
        return MemoryAuditLog


def _tampered(log: MemoryAuditLog, index: int, **changes: Any) -> None:
    """Rewrite one stored line behind the log's back."""
    line = json.loads(log._lines[index])
    line.update(changes)
    log._lines[index] = json.dumps(line).encode("ascii")


def test_the_memory_log_names_the_first_tampered_line() -> None:
    log = MemoryAuditLog(MemoryKeyRing())
    for i in range(1, 5):
        log.append(event(i))
    _tampered(log, 2, action="delete")
    result = log.verify()
    assert (result.ok, result.bad_line, result.lines) == (False, 3, 2)
    assert "MAC mismatch" in result.reason


def test_the_memory_log_notices_lines_cut_off_or_removed() -> None:
    log = MemoryAuditLog(MemoryKeyRing())
    for i in range(1, 5):
        log.append(event(i))
    del log._lines[1]
    assert log.verify().bad_line == 2
    del log._lines[1:]
    result = log.verify()
    assert not result.ok and "seq 4 was written" in result.reason


def test_the_memory_log_keeps_lines_that_fail_their_check_when_trimming() -> None:
    log = MemoryAuditLog(MemoryKeyRing())
    for i in range(1, 4):
        log.append(event(i))
    _tampered(log, 1, action="delete")
    assert log.trim(datetime.max.replace(tzinfo=UTC)) == 1  # stops at the bad line
    result = log.verify()
    assert (result.ok, result.bad_line) == (False, 1)
