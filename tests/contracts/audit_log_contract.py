"""Behaviour every AuditLog adapter must share; subclass and override `make_log`."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from xnai.domain.audit import ERASED_PREFIX, AuditLog
from xnai.domain.keys import RotatableKeyRing

T0 = datetime(2024, 1, 1, tzinfo=UTC)
MakeLog = Callable[[RotatableKeyRing], AuditLog]


def event(i: int, *, user: str = "u1", **details: Any) -> dict[str, Any]:
    """An audit event in the Auditor's shape, ``i`` minutes after T0."""
    return {
        "timestamp": (T0 + timedelta(minutes=i)).isoformat(),
        "event_id": f"e{i}",
        "event_type": "query",
        "severity": "info",
        "source_ip": "10.0.0.7",
        "user_id": user,
        "resource": f"doc/{i}",
        "action": "read",
        "success": True,
        "details": {"chunk_ids": [f"c{i}"], **details},
        "compliance_flags": ["GDPR"],
    }


class AuditLogContract:
    """Mixin of contract tests; a `Test...` subclass supplies `ring` (a fresh rotatable key
    ring) and `make_log(ring)`, a factory of empty logs."""

    @pytest.fixture
    def ring(self) -> RotatableKeyRing:
        """The key ring the log seals with (subclasses override this fixture)."""
        pytest.fail("AuditLogContract subclasses must override the `ring` fixture")

    @pytest.fixture
    def make_log(self) -> MakeLog:
        """Factory of logs under test (subclasses override this fixture)."""
        pytest.fail("AuditLogContract subclasses must override the `make_log` fixture")

    @pytest.fixture
    def log(self, make_log: MakeLog, ring: RotatableKeyRing) -> AuditLog:
        """An empty log."""
        return make_log(ring)

    def test_satisfies_the_port(self, log: AuditLog) -> None:
        assert isinstance(log, AuditLog)

    def test_an_empty_log_verifies(self, log: AuditLog) -> None:
        result = log.verify()
        assert result.ok and result.lines == 0
        assert list(log.lines()) == [] and log.tail(3) == []

    def test_appends_are_numbered_and_chained(self, log: AuditLog) -> None:
        assert [log.append(event(i)) for i in range(1, 4)] == [1, 2, 3]
        lines = list(log.lines())
        assert [line["seq"] for line in lines] == [1, 2, 3]
        assert [line["prev"] for line in lines[1:]] == [line["mac"] for line in lines[:2]]
        assert lines[0]["event_id"] == "e1" and lines[0]["details"] == {"chunk_ids": ["c1"]}
        result = log.verify()
        assert (result.ok, result.lines, result.first_seq, result.last_seq) == (True, 3, 1, 3)
        assert result.describe() == "OK: 3 lines"

    def test_tail_returns_the_last_lines(self, log: AuditLog) -> None:
        for i in range(1, 6):
            log.append(event(i))
        assert [line["seq"] for line in log.tail(2)] == [4, 5]
        assert [line["seq"] for line in log.tail(50)] == [1, 2, 3, 4, 5]
        assert log.tail(0) == []

    def test_lines_are_copies(self, log: AuditLog) -> None:
        log.append(event(1))
        next(iter(log.lines()))["user_id"] = "mallory"
        assert next(iter(log.lines()))["user_id"] == "u1"
        assert log.verify().ok

    def test_pseudonymise_erases_a_person_and_the_chain_still_verifies(self, log: AuditLog) -> None:
        log.append(event(1, user="u-alice", username="alice"))
        log.append(event(2, user="u-bob", target_username="alice"))
        log.append(event(3, user="u-bob"))
        assert log.pseudonymise("u-alice", also=["alice"]) == 2
        first, second, third = log.lines()
        assert first["user_id"].startswith(ERASED_PREFIX) and first["source_ip"] != "10.0.0.7"
        assert first["details"]["username"].startswith(ERASED_PREFIX)
        assert second["user_id"] == "u-bob" and second["source_ip"] == "10.0.0.7"
        assert second["details"]["target_username"].startswith(ERASED_PREFIX)
        assert third["user_id"] == "u-bob"
        assert log.verify().ok
        assert log.pseudonymise("u-alice", also=["alice"]) == 0

    def test_trim_drops_old_lines_and_the_rest_verifies(self, log: AuditLog) -> None:
        for i in range(1, 6):
            log.append(event(i))
        assert log.trim(T0 + timedelta(minutes=3)) == 2
        assert [line["seq"] for line in log.lines()] == [3, 4, 5]
        result = log.verify()
        assert (result.ok, result.lines, result.first_seq, result.last_seq) == (True, 3, 3, 5)
        assert log.append(event(6)) == 6
        assert log.verify().ok
        assert log.trim(T0) == 0

    def test_lines_sealed_with_a_retired_key_still_verify(
        self, log: AuditLog, ring: RotatableKeyRing
    ) -> None:
        log.append(event(1))
        ring.add_key()
        log.append(event(2))
        ring.retire_previous()
        log.append(event(3))
        first, _, third = log.lines()
        assert first["key_id"] != third["key_id"]
        assert log.verify().ok

    def test_concurrent_appends_get_distinct_numbers(self, log: AuditLog) -> None:
        with ThreadPoolExecutor(max_workers=8) as pool:
            seqs = list(pool.map(lambda i: log.append(event(i)), range(1, 41)))
        assert sorted(seqs) == list(range(1, 41))
        result = log.verify()
        assert result.ok and result.lines == 40
