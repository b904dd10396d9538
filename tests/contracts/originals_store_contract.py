"""Behaviour every OriginalsStore adapter must share; subclass and override `store` and `raw`."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol

import pytest

from xnai.domain.errors import IntegrityError
from xnai.domain.ports import OriginalsStore

DATA = b"the valve opens at noon \xc3\xa4\x00\xff"


class RawAccess(Protocol):
    """The stored bytes behind a kept path, as they sit at rest."""

    def read(self, path: Path) -> bytes: ...

    def write(self, path: Path, data: bytes) -> None: ...


class OriginalsStoreContract:
    """Mixin of contract tests; a `Test...` subclass supplies an empty `store` and `raw`,
    access to the bytes it keeps at rest."""

    @pytest.fixture
    def store(self) -> OriginalsStore:
        """The adapter under test (subclasses override this fixture)."""
        pytest.fail("OriginalsStoreContract subclasses must override the `store` fixture")

    @pytest.fixture
    def raw(self, store: OriginalsStore) -> RawAccess:
        """Bytes at rest of ``store`` (subclasses override this fixture)."""
        pytest.fail("OriginalsStoreContract subclasses must override the `raw` fixture")

    def test_keep_then_read_round_trips(self, store: OriginalsStore) -> None:
        path = store.keep("Notes.MD", DATA)
        assert path.suffix.lower() == ".md"
        assert store.read(path) == DATA

    def test_empty_content_round_trips(self, store: OriginalsStore) -> None:
        assert store.read(store.keep("empty.txt", b"")) == b""

    def test_content_is_encrypted_at_rest(self, store: OriginalsStore, raw: RawAccess) -> None:
        path = store.keep("a.txt", DATA)
        assert b"valve" not in raw.read(path)

    def test_same_content_and_suffix_is_stored_once(self, store: OriginalsStore) -> None:
        first = store.keep("a.txt", DATA)
        assert store.keep("b.TXT", DATA) == first
        assert store.forget(hashlib.sha256(DATA).hexdigest()) == 1

    def test_other_content_gets_another_path(self, store: OriginalsStore) -> None:
        assert store.keep("a.txt", DATA) != store.keep("a.txt", DATA + b"!")

    def test_forget_removes_every_file_of_one_hash(self, store: OriginalsStore) -> None:
        kept = [store.keep("a.txt", DATA), store.keep("a.md", DATA)]
        other = store.keep("b.txt", b"other")
        digest = hashlib.sha256(DATA).hexdigest()
        assert store.forget(digest) == 2
        for path in kept:
            with pytest.raises(FileNotFoundError):
                store.read(path)
        assert store.read(other) == b"other"
        assert store.forget(digest) == 0

    def test_forget_of_an_unknown_hash_removes_nothing(self, store: OriginalsStore) -> None:
        assert store.forget("0" * 64) == 0

    def test_kept_again_after_forget(self, store: OriginalsStore) -> None:
        path = store.keep("a.txt", DATA)
        store.forget(hashlib.sha256(DATA).hexdigest())
        assert store.keep("a.txt", DATA) == path and store.read(path) == DATA

    def test_tampered_content_is_an_integrity_error(
        self, store: OriginalsStore, raw: RawAccess
    ) -> None:
        path = store.keep("a.txt", DATA)
        raw.write(path, raw.read(path)[:-4] + b"AAAA")
        with pytest.raises(IntegrityError):
            store.read(path)
