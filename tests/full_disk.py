"""A real small filesystem that fills up: a tmpfs mounted for one test.

Mounting needs the right to mount (root, or CAP_SYS_ADMIN); without it the tests that use
it are skipped with the reason.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

SIZE = "4m"
FILLER = "filler"


def _mount(where: Path, size: str) -> str | None:
    """Mount a tmpfs of ``size`` at ``where``; why not, or None when mounted."""
    ran = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    return None if ran.returncode == 0 else (ran.stderr.strip() or f"exit {ran.returncode}")


def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs of its own, unmounted afterwards (for a fixture to yield from); the
    test is skipped when it cannot be mounted."""
    where = tmp_path / "disk"
    where.mkdir()
    try:
        why = _mount(where, SIZE)
    except FileNotFoundError:
        why = "no mount command"
    if why is not None:
        pytest.skip(f"needs permission to mount a small tmpfs ({why})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path, *, leave: int = 0) -> Path:
    """Fill ``disk`` up with one file, then give back ``leave`` bytes; the file."""
    filler = disk / FILLER
    block = b"\0" * 65536
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        while True:
            try:
                if os.write(fd, block) < len(block):
                    block = block[:4096]
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(block) == 1:
                    break
                block = block[: len(block) // 2]
    finally:
        os.close(fd)
    os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


def free(disk: Path) -> None:
    """Give the whole disk back."""
    (disk / FILLER).unlink(missing_ok=True)
