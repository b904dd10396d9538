"""Where each kind of data lives under the data directory: one definition for every layer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class DataLayout:
    """The paths of the data directory ``root``; relative names are for glob patterns."""

    ORIGINALS: ClassVar[str] = "originals"
    INDEX: ClassVar[str] = "index"
    INDEX_POINTER: ClassVar[str] = "index/CURRENT"
    KNOWLEDGE: ClassVar[str] = "knowledge"
    MANIFEST: ClassVar[str] = "knowledge/ingest_manifest.json"
    AUDIT: ClassVar[str] = "audit"
    ANSWERS: ClassVar[str] = "answers"
    MASTER_KEY: ClassVar[str] = "keys/master.key"
    COMPLIANCE_STATE: ClassVar[str] = "compliance/state.json"
    DATABASE: ClassVar[str] = "xnai.db"

    root: Path

    @property
    def originals(self) -> Path:
        """Uploaded files as received, content-addressed and encrypted."""
        return self.root / self.ORIGINALS

    @property
    def index(self) -> Path:
        """The index generations."""
        return self.root / self.INDEX

    @property
    def index_pointer(self) -> Path:
        """The file naming the committed index generation."""
        return self.root / self.INDEX_POINTER

    @property
    def knowledge(self) -> Path:
        """The folder of the ingest manifest."""
        return self.root / self.KNOWLEDGE

    @property
    def manifest(self) -> Path:
        """The provenance of every ingested document."""
        return self.root / self.MANIFEST

    @property
    def audit(self) -> Path:
        """The folder of the tamper-evident audit trail."""
        return self.root / self.AUDIT

    @property
    def answers(self) -> Path:
        """The signed answer bundles, one folder per asker, encrypted."""
        return self.root / self.ANSWERS

    @property
    def master_key(self) -> Path:
        """The default master key file."""
        return self.root / self.MASTER_KEY

    @property
    def compliance_state(self) -> Path:
        """Last runs of scheduled jobs and the last configuration seen."""
        return self.root / self.COMPLIANCE_STATE

    @property
    def sqlite_url(self) -> str:
        """The database when none is configured: SQLite in the data directory."""
        return f"sqlite:///{self.root / self.DATABASE}"
