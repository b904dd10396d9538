"""A full disk on the command line: one ``error:`` line, exit status 2, and nothing
half-written left in the data directory (as a user runs ``xnai``, in a child process)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.process import xnai
from tests.full_disk import fill, free, small_disk

NOTE = "# Newts\n\n" + "The great crested newt breeds in garden ponds in spring. " * 400


@pytest.fixture
def disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The data directory on a small disk of its own, initialised."""
    for where in small_disk(tmp_path):
        monkeypatch.setenv("XNAI_STORAGE__DATA_DIR", str(where / "data"))
        monkeypatch.setenv("XNAI_MODELS__EMBEDDER_BACKEND", "fake")
        monkeypatch.setenv("XNAI_MODELS__LLM_BACKEND", "fake")
        assert xnai("init").returncode == 0
        yield where


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "newts.md").write_text(NOTE, encoding="utf-8")
    return folder


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize("room", [0, 96 * 1024], ids=["no-room", "room-for-all-but-the-index"])
def test_ingest_on_a_full_disk_is_one_error_line_and_leaves_no_temp_folder(
    disk: Path, notes: Path, room: int
) -> None:
    index = disk / "data" / "index"
    before = sorted(p.name for p in index.iterdir())
    fill(disk, leave=room)
    ran = xnai("ingest", str(notes))
    assert ran.returncode == 2, ran.stderr
    assert "Traceback" not in ran.stderr
    [line] = error_lines(ran.stderr)
    assert line.startswith("error: the disk is full: ") and "free disk space" in line
    assert sorted(p.name for p in index.iterdir()) == before  # no .tmp-gen-*, no new gen
    free(disk)
    assert xnai("index", "verify").returncode == 0
    again = xnai("ingest", str(notes))
    assert again.returncode == 0, again.stderr
    assert "1 added" in again.stdout


def test_adding_a_user_on_a_full_disk_is_refused_and_audit_still_verifies(disk: Path) -> None:
    fill(disk)
    ran = xnai("users", "add", "bob")
    assert ran.returncode == 2, ran.stderr
    [line] = error_lines(ran.stderr)
    assert line.startswith("error: the disk is full: ") and "nothing was changed" in line
    assert "password" not in ran.stdout
    free(disk)
    assert "bob" not in xnai("users", "list").stdout
    assert xnai("audit", "verify").returncode == 0
