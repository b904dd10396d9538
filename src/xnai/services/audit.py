"""The audit trail: security-relevant events in the seed's shape."""

from __future__ import annotations

from typing import Any


class RecordingAudit:
    """Keeps events in memory (tests and processes without an audit file)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def record(
        self,
        event_type: str,
        *,
        action: str,
        resource: str = "",
        user_id: str | None = None,
        success: bool = True,
        severity: str = "info",
        source_ip: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Keep the event."""
        self.events.append(
            {
                "event_type": event_type,
                "action": action,
                "resource": resource,
                "user_id": user_id,
                "success": success,
                "severity": severity,
                "source_ip": source_ip,
                "details": dict(details or {}),
            }
        )
