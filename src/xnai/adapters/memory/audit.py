"""In-memory audit adapters: a sink that keeps events, and an HMAC-chained log in a list."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Collection, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Unpack

from xnai.adapters.audit.chain import GENESIS, KeyLookup, canonical, check, erase, seal
from xnai.domain.audit import AUDIT_KEY_CONTEXT, AuditAnchor, VerifyResult
from xnai.domain.ports import EVENT_DEFAULTS, EventFields, KeyRing


class MemoryAnchorStore:
    """The ``AnchorStore`` port in memory."""

    def __init__(self) -> None:
        self.anchor: AuditAnchor | None = None

    def load(self) -> AuditAnchor | None:
        """The last anchor saved; None when none was ever saved."""
        return self.anchor

    def save(self, anchor: AuditAnchor) -> None:
        """Replace the stored anchor."""
        self.anchor = anchor


class MemoryAuditLog:
    """The ``AuditLog`` port over a list: lines are sealed into the same HMAC chain as the
    file log, so verification, pseudonymisation and trimming behave alike."""

    def __init__(self, keys: KeyRing, *, context: str = AUDIT_KEY_CONTEXT) -> None:
        self._keys = keys
        self._context = context
        self._lock = threading.Lock()
        self._lines: list[bytes] = []  # canonical JSON: readers always get fresh copies
        self._base: tuple[int, str] = (1, GENESIS)  # seq and prev of the first kept line
        self._last: tuple[int, str] = (0, GENESIS)

    def append(self, event: Mapping[str, Any]) -> int:
        """Seal and keep one event; return its sequence number."""
        with self._lock:
            seq, prev = self._last
            key_id, key = self._keys.mac_key(self._context)
            line = seal(event, seq=seq + 1, prev=prev, key_id=key_id, key=key)
            self._lines.append(canonical(line))
            self._last = (seq + 1, line["mac"])
            return seq + 1

    def lines(self) -> Iterator[dict[str, Any]]:
        """Every line as stored, oldest first."""
        with self._lock:
            stored = list(self._lines)
        return (json.loads(raw) for raw in stored)

    def tail(self, n: int) -> list[dict[str, Any]]:
        """The last ``n`` lines as stored."""
        with self._lock:
            stored = self._lines[-n:] if n > 0 else []
        return [json.loads(raw) for raw in stored]

    def verify(self) -> VerifyResult:
        """Check every line's MAC, the sequence, the chain and the last sealed line."""
        with self._lock:
            stored, base, last = list(self._lines), self._base, self._last
        seq, prev = base[0] - 1, base[1]
        first: int | None = None
        for lineno, raw in enumerate(stored, start=1):
            line = json.loads(raw)
            problem = _problem(line, seq + 1, prev, self._key)
            if problem:
                return VerifyResult(False, lineno - 1, lineno, problem, first, seq)
            seq, prev = line["seq"], line["mac"]
            first = seq if first is None else first
        if (seq, prev) != last:
            reason = f"the log ends at seq {seq} but seq {last[0]} was written"
            return VerifyResult(False, len(stored), len(stored) + 1, reason, first, seq)
        return VerifyResult(True, len(stored), None, "", first, seq if stored else None)

    def pseudonymise(self, user_id: str, *, also: Collection[str] = ()) -> int:
        """Replace the person's values by pseudonyms in every line; the chain still verifies."""
        values = frozenset({user_id, *also})
        changed = 0
        with self._lock:
            for i, raw in enumerate(self._lines):
                new = erase(json.loads(raw), user_id, values, self._key)
                if new is not None:
                    self._lines[i] = canonical(new)
                    changed += 1
        return changed

    def trim(self, older_than: datetime) -> int:
        """Drop intact leading lines older than ``older_than`` and move the chain base."""
        drop = 0
        with self._lock:
            base = self._base
            for raw in self._lines:
                line = json.loads(raw)
                if not _older(line, older_than) or _problem(line, base[0], base[1], self._key):
                    break
                drop += 1
                base = (line["seq"] + 1, line["mac"])
            del self._lines[:drop]
            self._base = base
        return drop

    def _key(self, key_id: str) -> bytes | None:
        return self._keys.mac_key_by_id(self._context, key_id)


def _problem(line: Mapping[str, Any], seq: int, prev: str, keys: KeyLookup) -> str | None:
    """Why ``line`` is not the intact line ``seq`` following ``prev``; None when it is."""
    if line.get("seq") != seq:
        return f"expected seq {seq}, found {line.get('seq')}: a line was deleted or moved"
    if line.get("prev") != prev:
        return "prev does not match the previous line: the chain is broken"
    return check(line, keys)


def _older(line: Mapping[str, Any], older_than: datetime) -> bool:
    try:
        ts = datetime.fromisoformat(str(line.get("timestamp")))
    except ValueError:
        return False
    return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)) < older_than


class RecordingAudit:
    """Keeps events in memory (tests and processes without an audit file)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def record(self, event_type: str, **fields: Unpack[EventFields]) -> None:
        """Keep the event (with a copy of its details, as a written trail would)."""
        event = {"event_type": event_type, **EVENT_DEFAULTS, **fields}
        event["details"] = copy.deepcopy(dict(event["details"] or {}))
        self.events.append(event)
