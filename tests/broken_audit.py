"""A real audit trail that can be made unwritable, as a lost or read-only volume makes it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from xnai.adapters.audit import JsonlAuditLog
from xnai.adapters.memory import MemoryKeyRing
from xnai.services.audit import Auditor


@contextmanager
def unwritable(directory: Path) -> Iterator[None]:
    """The audit folder replaced by a regular file for the block, so every append fails
    with an OSError whoever runs the test (file permissions do not stop root); the lines
    written before are put back afterwards."""
    directory.mkdir(parents=True, exist_ok=True)
    aside = directory.with_name(directory.name + ".aside")
    directory.rename(aside)
    directory.write_text("not a directory\n")
    try:
        yield
    finally:
        directory.unlink()
        aside.rename(directory)


class AuditTrail:
    """The HMAC-chained JSON Lines audit log in ``directory``, behind an ``Auditor``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.auditor = Auditor(JsonlAuditLog(directory, MemoryKeyRing("audit-first")))

    def broken(self) -> AbstractContextManager[None]:
        """The block during which the trail cannot be written."""
        return unwritable(self.directory)

    def lines(self) -> list[dict[str, object]]:
        """Every line written so far."""
        return self.auditor.events
