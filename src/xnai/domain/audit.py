"""The audit log port: an append-only, HMAC-chained trail of security events."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

AUDIT_KEY_CONTEXT = "audit_logs"

# Fields of a line that identify a person. The MAC covers a keyed commitment to each value
# (kept in the line's ``refs``) instead of the value, so erasure can replace the value by its
# keyed pseudonym without breaking the chain.
PERSONAL_FIELDS: tuple[str, ...] = ("user_id", "source_ip")
# Detail keys whose values identify a person, as lines of format version 1 knew them.
PERSONAL_DETAIL_KEYS_V1: frozenset[str] = frozenset(
    {
        "username",
        "target_user",
        "target_user_id",
        "target_username",
        "email",
        "display_name",
        "readable_users",
        "writable_users",
    }
)
# A list under one of these keys (``readable_users``) holds one personal value per item.
PERSONAL_DETAIL_KEYS: frozenset[str] = PERSONAL_DETAIL_KEYS_V1 | {"ingested_by", "owner"}
# A ``resource`` that starts with one of these names a user (``user:alice``).
USER_RESOURCE_PREFIXES: tuple[str, ...] = ("user:", "user/")
ERASED_PREFIX = "erased:"


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of checking an audit log from its chain base to its anchor.

    ``bad_line`` is the 1-based line number in the file of the first problem (a line past the
    end of the file when lines were cut off), ``reason`` says what is wrong there.
    """

    ok: bool
    lines: int
    bad_line: int | None = None
    reason: str = ""
    first_seq: int | None = None
    last_seq: int | None = None

    def describe(self) -> str:
        """One line for people: ``OK: N lines``, ``line N: why`` or ``anchor: why``."""
        if self.ok:
            return f"OK: {self.lines} lines"
        if self.bad_line is None:
            return f"anchor: {self.reason}"
        return f"line {self.bad_line}: {self.reason}"


@dataclass(frozen=True, slots=True)
class AuditAnchor:
    """The head of the chain at the last append: how many lines (its ``seq``) and its MAC."""

    seq: int
    mac: str


@runtime_checkable
class AnchorStore(Protocol):
    """A copy of the audit log's anchor kept apart from the log's directory (the database),
    so deleting or rolling back the anchor file beside the log is detected."""

    def load(self) -> AuditAnchor | None:
        """The last anchor saved; None when none was ever saved."""
        ...

    def save(self, anchor: AuditAnchor) -> None:
        """Replace the stored anchor by ``anchor`` (durably, before returning)."""
        ...


@runtime_checkable
class AuditLog(Protocol):
    """Durable storage of audit events, each line chained to the previous one by an HMAC."""

    def append(self, event: Mapping[str, Any]) -> int:
        """Seal and append one event (a JSON-serialisable mapping); return its sequence number."""
        ...

    def verify(self) -> VerifyResult:
        """Check every line's MAC, the chain, the sequence and the anchor."""
        ...

    def lines(self) -> Iterator[dict[str, Any]]:
        """Every parseable line as stored, oldest first (unverified)."""
        ...

    def tail(self, n: int) -> list[dict[str, Any]]:
        """The last ``n`` lines as stored (unverified)."""
        ...

    def pseudonymise(self, user_id: str, *, also: Collection[str] = ()) -> int:
        """Replace a person's identifying values in every line by pseudonyms; lines changed.

        Lines whose ``user_id`` is ``user_id`` lose their ``user_id`` and ``source_ip``;
        personal detail values equal to ``user_id`` or to one of ``also`` (a username, an
        email address) are replaced wherever they appear. The chain still verifies.
        """
        ...

    def trim(self, older_than: datetime) -> int:
        """Drop the leading lines older than ``older_than``; return how many went."""
        ...
