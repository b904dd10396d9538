"""Configuration changes between runs, recorded as ``config_change`` audit events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xnai.domain.ports import AuditSink, StateStore

STATE_KEY = "config"


def flatten(nested: dict[str, Any]) -> dict[str, Any]:
    """Nested sections as ``section.key`` -> value."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else key, inner)
        else:
            out[prefix] = value

    walk("", nested)
    return out


class ConfigAudit:
    """Compares the effective configuration with the one last seen and audits the change."""

    def __init__(
        self, current: Callable[[], dict[str, Any]], state: StateStore, audit: AuditSink
    ) -> None:
        # The effective settings, nested by section with secrets already redacted, so a
        # secret is compared only as set or unset and never reaches the audit trail.
        self._current = current
        self.state = state
        self.audit = audit

    def note_config(self) -> list[str]:
        """Record a ``config_change`` audit event when the effective configuration differs
        from the one last seen; the changed keys."""
        current = flatten(self._current())
        previous = self.state.get(STATE_KEY)
        if not isinstance(previous, dict):
            previous = {}
        changed = sorted(
            k for k in current.keys() | previous.keys() if current.get(k) != previous.get(k)
        )
        if changed:
            self.audit.record(
                "config_change",
                action="configure",
                resource="config",
                user_id="local",
                details={
                    "first": not previous,
                    "changed": changed,
                    "values": {k: current.get(k) for k in changed[:50]},
                },
            )
            self.state.set(STATE_KEY, current)
        return changed
