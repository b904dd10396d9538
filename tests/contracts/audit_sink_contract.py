"""Behaviour every AuditSink must share; subclass and override the `sink` fixture."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from xnai.domain.ports import AuditSink

Sink = tuple[AuditSink, Callable[[], list[dict[str, Any]]]]


class AuditSinkContract:
    """Mixin of contract tests; a `Test...` subclass supplies `sink`: an empty sink and a
    function returning the events it kept, oldest first."""

    @pytest.fixture
    def sink(self) -> Sink:
        """The sink under test and its reader (subclasses override this fixture)."""
        pytest.fail("AuditSinkContract subclasses must override the `sink` fixture")

    def test_satisfies_the_port(self, sink: Sink) -> None:
        assert isinstance(sink[0], AuditSink)
        assert sink[1]() == []

    def test_every_field_is_kept(self, sink: Sink) -> None:
        audit, events = sink
        audit.record(
            "login_failure",
            action="login",
            resource="user:alice",
            user_id="u-1",
            success=False,
            severity="warning",
            source_ip="10.0.0.7",
            details={"chunk_ids": ["c1", "c2"], "count": 3},
        )
        (event,) = events()
        assert event["event_type"] == "login_failure" and event["action"] == "login"
        assert event["resource"] == "user:alice" and event["user_id"] == "u-1"
        assert event["success"] is False and event["severity"] == "warning"
        assert event["source_ip"] == "10.0.0.7"
        assert event["details"] == {"chunk_ids": ["c1", "c2"], "count": 3}

    def test_defaults(self, sink: Sink) -> None:
        audit, events = sink
        audit.record("query", action="search")
        (event,) = events()
        assert (event["resource"], event["user_id"], event["success"]) == ("", None, True)
        assert (event["severity"], event["source_ip"], event["details"]) == ("info", None, {})

    def test_details_are_copied_when_recorded(self, sink: Sink) -> None:
        audit, events = sink
        details: dict[str, Any] = {"chunk_ids": ["c1"]}
        audit.record("query", action="search", details=details)
        details["chunk_ids"].append("c2")
        details["late"] = True
        assert events()[0]["details"] == {"chunk_ids": ["c1"]}

    def test_order_is_kept(self, sink: Sink) -> None:
        audit, events = sink
        for i in range(5):
            audit.record("query", action=f"search-{i}")
        assert [e["action"] for e in events()] == [f"search-{i}" for i in range(5)]

    def test_concurrent_records_are_all_kept(self, sink: Sink) -> None:
        audit, events = sink
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda i: audit.record("query", action=f"a{i}"), range(40)))
        assert sorted(e["action"] for e in events()) == sorted(f"a{i}" for i in range(40))
