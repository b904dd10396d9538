"""Durable file operations: write to a temp name, fsync, rename, fsync the directory."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from xnai.domain.errors import ConfigError

TMP_MARK = ".tmp-"
FILE_MODE = 0o600
DIR_MODE = 0o700


def fsync_dir(path: Path) -> None:
    """Flush a directory entry table so a rename inside it survives power loss."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """Flush one file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_dir(path: Path) -> Path:
    """Create ``path`` (owner-only) if missing."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    return path


def temp_sibling(path: Path) -> Path:
    """The temp file of this process for ``path``: same directory, pid in the name."""
    return path.with_name(f"{TMP_MARK}{path.name}.{os.getpid()}")


def remove_stale_temps(path: Path) -> None:
    """Delete temp files of ``path`` left by processes that died mid-write."""
    for tmp in path.parent.glob(f"{TMP_MARK}{path.name}.*"):
        pid = tmp.name.rpartition(".")[2]
        if pid.isdigit() and not process_alive(int(pid)):
            tmp.unlink(missing_ok=True)


def process_alive(pid: int) -> bool:
    """True when a process with this id exists (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never a mix."""
    ensure_dir(path.parent)
    tmp = temp_sibling(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def restrict_tree(path: Path) -> None:
    """Give every file under ``path`` owner-only permissions."""
    for root, dirs, files in os.walk(path):
        for name in dirs:
            os.chmod(os.path.join(root, name), DIR_MODE)
        for name in files:
            os.chmod(os.path.join(root, name), FILE_MODE)
    os.chmod(path, DIR_MODE)


def existing_file(path: Path, setting: str) -> Path:
    """``path`` when it is a file; ConfigError naming ``setting`` otherwise."""
    if not path.is_file():
        raise ConfigError(f"{setting}: no such file: {path}")
    return path


def build_once(target: Path, build: Callable[[Path], Path]) -> Path:
    """``target`` when it exists, else what ``build(target)`` makes."""
    return target if target.is_file() else build(target)
