"""Signed answer bundles on disk: ``answers/<asker>/<answer id>.json``, each file encrypted
with the ``user_data`` key.

The asker's folder is named by the sha256 of their user id, so an answer id alone finds
nothing: a lookup needs the id of the user who asked, and erasing a user deletes one
folder. Writers hold a shared lock on ``answers/.lock`` and a key rotation's rewrite an
exclusive one, so no bundle is written under a key the rotation is about to retire.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from xnai.adapters.storage.fsutil import TMP_MARK, atomic_write_bytes, ensure_dir
from xnai.domain.bundles import AnswerBundle, bundle_from
from xnai.domain.errors import IntegrityError, MalformedBundleError
from xnai.domain.keys import USER_DATA
from xnai.domain.ports import KeyRing

log = logging.getLogger("xnai.storage")

ANSWER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SUFFIX = ".json"


def asker_folder(user_id: str) -> str:
    """The folder name of one asker's bundles."""
    return hashlib.sha256(user_id.encode("utf-8")).hexdigest()


def record_bytes(user_id: str, bundle: AnswerBundle) -> bytes:
    """What one stored bundle holds before encryption: the asker and the bundle."""
    return json.dumps({"user_id": user_id, "bundle": bundle.as_dict()}).encode("utf-8")


def read_record(plain: bytes, where: str) -> tuple[str, AnswerBundle]:
    """The asker and the bundle of a decrypted record; IntegrityError when the record is
    not one this store wrote."""
    try:
        record: Any = json.loads(plain)
        return str(record["user_id"]), bundle_from(record["bundle"])
    except (ValueError, KeyError, TypeError, MalformedBundleError) as exc:
        raise IntegrityError(f"{where}: not a stored answer bundle ({exc})") from None


def record_bundle(plain: bytes, user_id: str, where: str) -> AnswerBundle | None:
    """The bundle of a decrypted record when ``user_id`` asked it, else None."""
    owner, bundle = read_record(plain, where)
    return bundle if owner == user_id else None


class FileAnswerBundles:
    """The ``AnswerBundleStore`` port over one folder (and ``Reencryptable``)."""

    name = "answer bundles"

    def __init__(self, folder: Path, keyring: KeyRing) -> None:
        self.folder = folder
        self.keyring = keyring

    def put(self, user_id: str, bundle: AnswerBundle) -> None:
        """Write the bundle, encrypted, as ``<asker>/<answer id>.json``."""
        path = self._path(user_id, bundle.answer_id)
        if path is None:
            raise ValueError(f"answer id {bundle.answer_id!r} is not a safe file name")
        with self._locked(fcntl.LOCK_SH):
            token = self.keyring.encrypt(USER_DATA, record_bytes(user_id, bundle))
            atomic_write_bytes(path, token)

    def get(self, user_id: str, answer_id: str) -> AnswerBundle | None:
        """The bundle of ``answer_id`` asked by ``user_id``; None when there is none."""
        path = self._path(user_id, answer_id)
        if path is None or not path.is_file():
            return None
        return self._read(path, user_id)

    def of_user(self, user_id: str) -> list[AnswerBundle]:
        """Every bundle of ``user_id``, oldest first."""
        folder = self.folder / asker_folder(user_id)
        found = [self._read(p, user_id) for p in _bundle_files(folder)]
        bundles = [b for b in found if b is not None]
        return sorted(bundles, key=lambda b: (b.created_at, b.answer_id))

    def forget_user(self, user_id: str) -> int:
        """Delete the folder of ``user_id``'s bundles; how many bundles went."""
        folder = self.folder / asker_folder(user_id)
        with self._locked(fcntl.LOCK_SH):
            count = len(_bundle_files(folder))
            shutil.rmtree(folder, ignore_errors=True)
        return count

    def purge_before(self, cutoff: datetime) -> int:
        """Delete every bundle made before ``cutoff``; how many went. A file that cannot be
        read is left in place and logged."""
        gone = 0
        with self._locked(fcntl.LOCK_SH):
            for path in self._all_files():
                try:
                    _, bundle = read_record(self._decrypt(path), str(path))
                except (IntegrityError, FileNotFoundError) as exc:
                    log.warning("answer bundle left in place: %s", exc)
                    continue
                if bundle.made_before(cutoff):
                    path.unlink(missing_ok=True)
                    gone += 1
        return gone

    def reencrypt(self) -> int:
        """Rewrite every bundle under the ring's current key (no writer meanwhile)."""
        count = 0
        with self._locked(fcntl.LOCK_EX):
            for path in self._all_files():
                plain = self._decrypt(path)
                atomic_write_bytes(path, self.keyring.encrypt(USER_DATA, plain))
                count += 1
        return count

    def _all_files(self) -> list[Path]:
        found = sorted(self.folder.glob(f"*/*{SUFFIX}"))
        return [p for p in found if not p.name.startswith(TMP_MARK)]

    def _path(self, user_id: str, answer_id: str) -> Path | None:
        if not ANSWER_ID.match(answer_id):
            return None
        return self.folder / asker_folder(user_id) / f"{answer_id}{SUFFIX}"

    def _read(self, path: Path, user_id: str) -> AnswerBundle | None:
        return record_bundle(self._decrypt(path), user_id, str(path))

    def _decrypt(self, path: Path) -> bytes:
        try:
            return self.keyring.decrypt(USER_DATA, path.read_bytes())
        except IntegrityError as exc:
            raise IntegrityError(f"{path}: {exc}") from None

    @contextlib.contextmanager
    def _locked(self, mode: int) -> Iterator[None]:
        ensure_dir(self.folder)
        fd = os.open(self.folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _bundle_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in folder.glob(f"*{SUFFIX}") if not p.name.startswith(TMP_MARK)]
