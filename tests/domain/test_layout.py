"""The data-directory layout: every path under one root, relative names usable as globs."""

from __future__ import annotations

from pathlib import Path

import pytest

from xnai.domain.layout import DataLayout


def test_every_path_is_under_the_root(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    assert layout.originals == tmp_path / "originals"
    assert layout.index == tmp_path / "index"
    assert layout.index_pointer == tmp_path / "index" / "CURRENT"
    assert layout.manifest == tmp_path / "knowledge" / "ingest_manifest.json"
    assert layout.audit == tmp_path / "audit"
    assert layout.master_key == tmp_path / "keys" / "master.key"
    assert layout.compliance_state == tmp_path / "compliance" / "state.json"
    assert layout.sqlite_url == f"sqlite:///{tmp_path / 'xnai.db'}"


def test_relative_names_match_the_paths(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    assert tmp_path / layout.MANIFEST == layout.manifest
    assert tmp_path / layout.INDEX_POINTER == layout.index_pointer
    assert tmp_path / layout.ORIGINALS == layout.originals


def test_a_layout_is_a_value(tmp_path: Path) -> None:
    assert DataLayout(tmp_path) == DataLayout(tmp_path)
    with pytest.raises(AttributeError):
        DataLayout(tmp_path).root = tmp_path / "other"  # type: ignore[misc]
