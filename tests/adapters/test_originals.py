"""Stored originals: content-addressed, encrypted, written under the writer lock."""

from __future__ import annotations

import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from xnai.adapters.security.keyring import FernetKeyRing
from xnai.adapters.storage.originals import FileOriginals
from xnai.domain.errors import IntegrityError
from xnai.domain.ports import OriginalsStore


class CountingLock:
    """A real lock that counts how often it was taken."""

    def __init__(self) -> None:
        self.taken = 0
        self._lock = threading.Lock()

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            self.taken += 1
            yield


@pytest.fixture
def lock() -> CountingLock:
    return CountingLock()


@pytest.fixture
def store(tmp_path: Path, lock: CountingLock) -> FileOriginals:
    ring = FernetKeyRing.from_keys([FernetKeyRing.generate_key()])
    return FileOriginals(tmp_path / "originals", ring, lock)


def test_keep_then_read_round_trips_and_encrypts(store: FileOriginals) -> None:
    path = store.keep("Notes.MD", b"the valve opens at noon")
    assert path.parent == store.folder and path.suffix == ".md"
    assert b"valve" not in path.read_bytes()
    assert store.read(path) == b"the valve opens at noon"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_same_content_is_stored_once(store: FileOriginals, lock: CountingLock) -> None:
    first = store.keep("a.txt", b"same")
    second = store.keep("a.txt", b"same")
    assert first == second and len(list(store.folder.iterdir())) == 1
    assert lock.taken == 2  # every write is under the writer lock


def test_forget_removes_every_file_of_a_hash(store: FileOriginals) -> None:
    kept = [store.keep("a.txt", b"same"), store.keep("a.md", b"same")]
    other = store.keep("b.txt", b"other")
    digest = kept[0].stem
    assert store.forget(digest) == 2
    assert not any(p.exists() for p in kept) and other.exists()
    assert store.forget(digest) == 0


def test_a_tampered_file_is_refused(store: FileOriginals) -> None:
    path = store.keep("a.txt", b"secret")
    path.write_bytes(path.read_bytes()[:-4] + b"AAAA")
    with pytest.raises(IntegrityError):
        store.read(path)


def test_it_is_an_originals_store(store: FileOriginals) -> None:
    port: OriginalsStore = store
    assert port.forget("0" * 64) == 0
