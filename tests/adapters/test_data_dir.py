"""The data directory: created owner-only; a missing key file is refused once data exists."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from xnai.adapters.storage.data_dir import check_key_file, holds_data, prepare_data_dir
from xnai.adapters.storage.sql import SqlDocumentRepository
from xnai.domain.errors import ConfigError
from xnai.domain.layout import DataLayout


@pytest.fixture
def layout(tmp_path: Path) -> DataLayout:
    return DataLayout(tmp_path / "data")


def test_prepare_creates_an_owner_only_directory(layout: DataLayout) -> None:
    prepare_data_dir(layout)
    prepare_data_dir(layout)  # again: nothing changes
    assert stat.S_IMODE(layout.root.stat().st_mode) == 0o700


def test_a_new_directory_holds_nothing(layout: DataLayout) -> None:
    prepare_data_dir(layout)
    assert not holds_data(layout, "")
    check_key_file(layout.master_key, layout, "")  # a new key may be made


@pytest.mark.parametrize(
    "marker", ["index/CURRENT", "knowledge/ingest_manifest.json", "originals/x"]
)
def test_files_mean_data(layout: DataLayout, marker: str) -> None:
    (layout.root / marker).parent.mkdir(parents=True)
    (layout.root / marker).write_bytes(b"x")
    assert holds_data(layout, "")
    with pytest.raises(ConfigError, match="master key file"):
        check_key_file(layout.master_key, layout, "")


def test_rows_in_the_database_mean_data(layout: DataLayout) -> None:
    prepare_data_dir(layout)
    repo = SqlDocumentRepository(layout.sqlite_url)
    repo.commit(1, [], [])
    repo.close()
    assert holds_data(layout, "")


def test_an_existing_key_file_is_always_accepted(layout: DataLayout) -> None:
    layout.index.mkdir(parents=True)
    layout.index_pointer.write_text("1")
    layout.master_key.parent.mkdir(parents=True)
    layout.master_key.write_bytes(b"key")
    check_key_file(layout.master_key, layout, "")
