"""The data directory itself: created owner-only, and whether it already holds anything."""

from __future__ import annotations

from pathlib import Path

from xnai.adapters.storage.sql import database_has_rows
from xnai.domain.errors import ConfigError
from xnai.domain.layout import DataLayout


def prepare_data_dir(layout: DataLayout) -> None:
    """Create the data directory (owner-only) when it is missing."""
    layout.root.mkdir(parents=True, exist_ok=True, mode=0o700)


def holds_data(layout: DataLayout, database_url: str) -> bool:
    """True when the data directory or the database already holds anything."""
    # Any file in the originals, audit or answers folders counts, the audit log among them.
    if layout.index_pointer.exists() or layout.manifest.exists():
        return True
    if any(any(folder.glob("*")) for folder in (layout.originals, layout.audit, layout.answers)):
        return True
    return database_has_rows(database_url or layout.sqlite_url)


def check_key_file(key_file: Path, layout: DataLayout, database_url: str) -> None:
    """ConfigError when the master key file is missing for a data directory that holds data:
    a new key is made only for a new data directory, never silently for existing data."""
    if key_file.exists() or not holds_data(layout, database_url):
        return
    raise ConfigError(
        f"the data directory {layout.root} holds data but the master key file "
        f"{key_file} is missing: restore it from your backup, or give the key in "
        "enterprise.security.master_key (XNAI_ENTERPRISE__SECURITY__MASTER_KEY). "
        "A new key is made only for a new data directory"
    )
