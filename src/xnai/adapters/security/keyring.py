"""Fernet key ring: master keys in a key file (or the environment), keys derived per context.

Each master key yields, per context (user_data, system_config, audit_logs, ai_models), a
Fernet key (HKDF-SHA256, info = the context name) and a separate HMAC key. Encryption uses
the newest master key; decryption accepts every key still on the ring (MultiFernet), so
data stays readable while a rotation re-encrypts it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from xnai.adapters.security.sealing import FernetSealer
from xnai.adapters.storage.fsutil import (
    DIR_MODE,
    FILE_MODE,
    atomic_write_bytes,
    fsync_dir,
    temp_sibling,
)
from xnai.domain.errors import ConfigError, IntegrityError
from xnai.domain.keys import AUDIT_LOGS, CONTEXTS, KeyInfo, KeyState
from xnai.domain.ports import Sealer

log = logging.getLogger(__name__)

KEY_FILE_VERSION = 1
MASTER_KEY_BYTES = 32
_FERNET_VERSION = 0x80
_MIN_TOKEN_BYTES = 1 + 8 + 16 + 16 + 32  # version, time, IV, one block, HMAC


@dataclass(frozen=True, slots=True)
class MasterKey:
    """One master key: 32 random bytes, its public id and when it was made."""

    secret: bytes = field(repr=False)
    created_at: datetime | None

    @property
    def key_id(self) -> str:
        """A public fingerprint: derived one-way, safe to show and to log."""
        return _derive(self.secret, b"xnai key id", 6).hex()

    def fernet(self, context: str) -> Fernet:
        """The data key of ``context``."""
        return Fernet(base64.urlsafe_b64encode(_derive(self.secret, context.encode())))

    def mac_key(self, context: str) -> bytes:
        """The HMAC key of ``context`` (never the same as its data key)."""
        return _derive(self.secret, f"{context}:mac".encode())


@dataclass(frozen=True, slots=True)
class RetiredKey:
    """What is left of a rotated-out master key: the MAC key that verifies old audit lines."""

    key_id: str
    created_at: datetime | None
    retired_at: datetime | None
    audit_mac_key: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class _Ring:
    """An immutable set of keys with its derived Fernets; swapped whole on reload."""

    masters: tuple[MasterKey, ...]
    retired: tuple[RetiredKey, ...]
    stamp: tuple[int, int] | None
    multis: dict[str, MultiFernet]

    @classmethod
    def of(
        cls,
        masters: Sequence[MasterKey],
        retired: Sequence[RetiredKey],
        stamp: tuple[int, int] | None,
    ) -> _Ring:
        if not masters:
            raise ConfigError("the key ring holds no master key")
        multis = {c: MultiFernet([m.fernet(c) for m in masters]) for c in CONTEXTS}
        return cls(tuple(masters), tuple(retired), stamp, multis)


class FernetKeyRing:
    """The ``KeyRing`` port (and ``RotatableKeyRing``) over Fernet and HKDF-SHA256."""

    def __init__(
        self,
        masters: Sequence[MasterKey],
        retired: Sequence[RetiredKey] = (),
        *,
        enabled: bool = True,
        path: Path | None = None,
    ) -> None:
        self.enabled = enabled
        self.path = path
        self.source = f"key file {path}" if path is not None else "environment"
        self._lock = threading.Lock()
        self._ring = _Ring.of(masters, retired, _stamp(path) if path else None)

    # -- construction ----------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, enabled: bool = True, create: bool = False) -> FernetKeyRing:
        """The ring of a key file; with ``create``, a new file with one fresh key if absent."""
        if create and not path.exists():
            _create_key_file(path)
        masters, retired = _read_key_file(path)
        return cls(masters, retired, enabled=enabled, path=path)

    @classmethod
    def from_keys(cls, keys: Sequence[str], *, enabled: bool = True) -> FernetKeyRing:
        """A ring of base64 master keys given in configuration, newest first."""
        masters = [MasterKey(_decode_key(k.strip(), "master_key"), None) for k in keys if k.strip()]
        if not masters:
            raise ConfigError("enterprise.security.master_key is empty")
        return cls(masters, enabled=enabled)

    @staticmethod
    def generate_key() -> str:
        """A new random master key in the base64 form the configuration accepts."""
        return base64.urlsafe_b64encode(secrets.token_bytes(MASTER_KEY_BYTES)).decode("ascii")

    # -- the KeyRing port ------------------------------------------------------------

    def encrypt(self, context: str, data: bytes) -> bytes:
        """A Fernet token of ``data`` under the current key (``data`` itself when disabled)."""
        _check_context(context)
        if not self.enabled:
            return data
        return self._fresh().multis[context].encrypt(data)

    def decrypt(self, context: str, token: bytes) -> bytes:
        """The plaintext of ``token``; IntegrityError when it was altered or its key is gone.

        With encryption disabled, plain data passes through while tokens written when it
        was enabled are still decrypted (and checked), so switching it off loses nothing.
        """
        _check_context(context)
        if not self.enabled and not looks_encrypted(token):
            return token
        ring = self._ring
        try:
            return ring.multis[context].decrypt(token)
        except InvalidToken:
            reloaded = self._fresh()  # another process may have rotated the keys
            if reloaded is not ring:
                with contextlib.suppress(InvalidToken):
                    return reloaded.multis[context].decrypt(token)
        raise IntegrityError(
            f"{context} data failed its integrity check: it was altered, or encrypted with "
            "a master key that is not on the key ring"
        )

    def mac_key(self, context: str) -> tuple[str, bytes]:
        """The current (key id, HMAC key) of ``context``."""
        _check_context(context)
        current = self._fresh().masters[0]
        return current.key_id, current.mac_key(context)

    def sealer(self, context: str, label: bytes) -> Sealer:
        """A sealer whose key is derived from ``context``'s current HMAC key and ``label``;
        it encrypts even with encryption at rest off."""
        _, key = self.mac_key(context)
        return FernetSealer(hmac.new(key, label, hashlib.sha256).digest())

    def mac_key_by_id(self, context: str, key_id: str) -> bytes | None:
        """An HMAC key by key id; retired keys keep only their audit_logs MAC key."""
        _check_context(context)
        ring = self._fresh()
        for master in ring.masters:
            if master.key_id == key_id:
                return master.mac_key(context)
        if context == AUDIT_LOGS:
            for old in ring.retired:
                if old.key_id == key_id:
                    return old.audit_mac_key
        return None

    # -- rotation --------------------------------------------------------------------

    @property
    def created_at(self) -> datetime | None:
        """When the current master key was made (None for a key from the environment)."""
        return self._fresh().masters[0].created_at

    @property
    def current_key_id(self) -> str:
        """The id of the key that encrypts new data."""
        return self._fresh().masters[0].key_id

    def list_keys(self) -> list[KeyInfo]:
        """Every master key without its material: current, previous, then retired."""
        ring = self._fresh()
        infos = [
            KeyInfo(m.key_id, KeyState.CURRENT if i == 0 else KeyState.PREVIOUS, m.created_at)
            for i, m in enumerate(ring.masters)
        ]
        infos += [
            KeyInfo(r.key_id, KeyState.RETIRED, r.created_at, r.retired_at) for r in ring.retired
        ]
        return infos

    def add_key(self) -> KeyInfo:
        """Write a new current master key in front of the others (key file only)."""
        path = self._writable()
        with self._lock:
            masters, retired = _read_key_file(path)
            new = _new_master()
            _write_key_file(path, [new, *masters], retired)
            self._ring = _Ring.of([new, *masters], retired, _stamp(path))
        return KeyInfo(new.key_id, KeyState.CURRENT, new.created_at)

    def retire_previous(self) -> list[str]:
        """Keep only the current master key; the others leave their audit MAC key behind.

        With keys from the environment nothing can be removed here: the operator drops the
        old keys from the variable, and an empty list is returned.
        """
        if self.path is None:
            return []
        path = self.path
        with self._lock:
            masters, retired = _read_key_file(path)
            stamp = _now()
            gone = [_retire(m, stamp) for m in masters[1:]]
            _write_key_file(path, masters[:1], [*gone, *retired])
            self._ring = _Ring.of(masters[:1], [*gone, *retired], _stamp(path))
        return [g.key_id for g in gone]

    # -- internals -------------------------------------------------------------------

    def _writable(self) -> Path:
        if self.path is None:
            raise ConfigError(
                "the master key comes from enterprise.security.master_key (or "
                "XNAI_ENTERPRISE__SECURITY__MASTER_KEY): put a new key in front of the old "
                "one (NEW,OLD), run `xnai keys rotate`, then remove the old key"
            )
        return self.path

    def _fresh(self) -> _Ring:
        """The ring, reloaded first when the key file changed on disk (a cheap stat)."""
        ring = self._ring
        if self.path is None or _stamp(self.path) == ring.stamp:
            return ring
        with self._lock:
            stamp = _stamp(self.path)
            if stamp != self._ring.stamp:
                masters, retired = _read_key_file(self.path)
                self._ring = _Ring.of(masters, retired, stamp)
            return self._ring


def looks_encrypted(data: bytes) -> bool:
    """True when ``data`` has the shape of a Fernet token (it may still fail to verify)."""
    if len(data) < 100 or not data.startswith(b"gA"):
        return False
    try:
        raw = base64.urlsafe_b64decode(data)
    except (binascii.Error, ValueError):
        return False
    return raw[0] == _FERNET_VERSION and len(raw) >= _MIN_TOKEN_BYTES


def _new_master() -> MasterKey:
    return MasterKey(secrets.token_bytes(MASTER_KEY_BYTES), _now())


def _retire(master: MasterKey, when: datetime) -> RetiredKey:
    return RetiredKey(master.key_id, master.created_at, when, master.mac_key(AUDIT_LOGS))


def _derive(secret: bytes, info: bytes, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(secret)


def _check_context(context: str) -> None:
    if context not in CONTEXTS:
        raise ValueError(f"unknown key context {context!r}; one of {', '.join(CONTEXTS)}")


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns)


def _decode_key(text: str, where: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raw = b""
    if len(raw) != MASTER_KEY_BYTES:
        raise ConfigError(
            f"{where}: a master key is 32 random bytes in URL-safe base64 (44 characters), "
            'e.g. the output of `python -c "import base64,os;'
            'print(base64.urlsafe_b64encode(os.urandom(32)).decode())"`'
        )
    return raw


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def _stamp_text(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _read_key_file(path: Path) -> tuple[list[MasterKey], list[RetiredKey]]:
    """Parse and check a key file; ConfigError names what is wrong."""
    try:
        mode = path.stat().st_mode & 0o777
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"master key file not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"master key file {path} is not readable: {exc}") from None
    if mode & 0o077:
        log.warning("master key file %s has mode %o: run chmod 600 on it", path, mode)
    try:
        masters = [_master(entry, path) for entry in data["keys"]]
        retired = [_retired(entry) for entry in data.get("retired", [])]
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"master key file {path} is malformed: {exc!r}") from None
    if not masters:
        raise ConfigError(f"master key file {path} holds no key")
    return masters, retired


def _master(entry: dict[str, Any], path: Path) -> MasterKey:
    master = MasterKey(_decode_key(entry["key"], str(path)), _time(entry.get("created_at")))
    if entry.get("id") not in (None, master.key_id):
        raise ValueError(f"key {entry['id']} does not match its material")
    return master


def _retired(entry: dict[str, Any]) -> RetiredKey:
    return RetiredKey(
        str(entry["id"]),
        _time(entry.get("created_at")),
        _time(entry.get("retired_at")),
        base64.urlsafe_b64decode(entry["audit_logs_mac_key"]),
    )


def _key_file_bytes(masters: Sequence[MasterKey], retired: Sequence[RetiredKey]) -> bytes:
    doc = {
        "version": KEY_FILE_VERSION,
        "keys": [
            {"id": m.key_id, "created_at": _stamp_text(m.created_at), "key": _b64(m.secret)}
            for m in masters
        ],
        "retired": [
            {
                "id": r.key_id,
                "created_at": _stamp_text(r.created_at),
                "retired_at": _stamp_text(r.retired_at),
                "audit_logs_mac_key": _b64(r.audit_mac_key),
            }
            for r in retired
        ],
    }
    return (json.dumps(doc, indent=2) + "\n").encode("utf-8")


def _write_key_file(
    path: Path, masters: Sequence[MasterKey], retired: Sequence[RetiredKey]
) -> None:
    _key_dir(path)
    atomic_write_bytes(path, _key_file_bytes(masters, retired))


def _key_dir(path: Path) -> None:
    existed = path.parent.exists()
    path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    if not existed:
        os.chmod(path.parent, DIR_MODE)


def _create_key_file(path: Path) -> None:
    """Write a key file with one fresh key unless another process just made one."""
    _key_dir(path)
    tmp = temp_sibling(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(_key_file_bytes([_new_master()], []))
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):  # link never replaces: first writer wins
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
