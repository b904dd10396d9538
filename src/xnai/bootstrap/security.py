"""The key ring, the audit trail, users and credentials, and what a key rotation rewrites."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from xnai.config import Settings
from xnai.domain.keys import USER_DATA, Reencryptable, RotatableKeyRing
from xnai.domain.layout import DataLayout
from xnai.domain.ports import AuditSink, KeyRing
from xnai.services.audit import Auditor
from xnai.services.auth import AuthPolicy, AuthService
from xnai.services.identity import CONTEXT_WORDS
from xnai.services.keys import KeyRotation

if TYPE_CHECKING:
    from xnai.adapters.storage.sql import SqlDocumentRepository
    from xnai.domain.ports import IndexStore


def key_file_path(settings: Settings) -> Path | None:
    """The master key file, or None when the key is given in the configuration."""
    sec = settings.enterprise.security
    if sec.master_key is not None and sec.master_key.get_secret_value().strip():
        return None
    if sec.master_key_file is not None:
        return settings.absolute(sec.master_key_file)
    return DataLayout(settings.data_dir).master_key


def build_keyring(settings: Settings) -> RotatableKeyRing:
    """The key ring: from the configured key(s), else from the key file (made for a new
    data directory; missing for one that holds data is an error, never a silent new key)."""
    from xnai.adapters.security.keyring import FernetKeyRing
    from xnai.adapters.storage.data_dir import check_key_file

    sec = settings.enterprise.security
    path = key_file_path(settings)
    if path is None:
        assert sec.master_key is not None
        keys = sec.master_key.get_secret_value().split(",")
        return FernetKeyRing.from_keys(keys, enabled=sec.encryption_enabled)
    database = settings.storage.database_url.get_secret_value()
    check_key_file(path, DataLayout(settings.data_dir), database)
    return FernetKeyRing.open(path, enabled=sec.encryption_enabled, create=True)


def build_auditor(
    settings: Settings, keyring: KeyRing | None = None, repo: SqlDocumentRepository | None = None
) -> Auditor:
    """The tamper-evident audit trail ``<data_dir>/audit/audit.jsonl`` (audit_logs key),
    with a copy of its anchor in the database (that of ``repo``, else the configured one)."""
    from xnai.adapters.audit import JsonlAuditLog
    from xnai.adapters.storage.sql_audit_anchor import SqlAnchorStore
    from xnai.bootstrap.storage import database_url

    ring = keyring if keyring is not None else build_keyring(settings)
    anchors = SqlAnchorStore(repo.engine if repo is not None else database_url(settings))
    return Auditor(JsonlAuditLog(DataLayout(settings.data_dir).audit, ring, anchors=anchors))


def build_auth(
    settings: Settings, repo: SqlDocumentRepository, audit: AuditSink, keyring: KeyRing | None
) -> AuthService:
    """Users and credentials in the database of ``repo`` (argon2id, TOTP, bundled list)."""
    from xnai.adapters.security.passwords import Argon2Hasher, CommonPasswords
    from xnai.adapters.security.totp import TotpCodes
    from xnai.adapters.storage.sql_identity import SqlIdentityRepository

    sec = settings.enterprise.security
    policy = AuthPolicy(
        session_timeout=sec.session_timeout,
        session_idle_timeout=sec.session_idle_timeout,
        failed_login_lockout=sec.failed_login_lockout,
        lockout_duration=sec.lockout_duration,
        login_window=sec.login_throttle_window,
        login_client_failures=sec.login_client_failures,
        login_global_failures=sec.login_global_failures,
        password_min_length=sec.password_min_length,
        mfa_required=sec.mfa_required,
        issuer=settings.enterprise.name,
        context_words=(*CONTEXT_WORDS, *sec.password_context_words),
    )
    return AuthService(
        SqlIdentityRepository(repo.engine),
        Argon2Hasher(),
        TotpCodes(),
        policy=policy,
        audit=audit,
        keyring=keyring,
        is_common=CommonPasswords(),
    )


def encrypted_files(layout: DataLayout, keyring: KeyRing) -> Reencryptable:
    """The files under the data directory that are encrypted whole with the user_data key."""
    from xnai.adapters.index.bm25_index import ENCRYPTED_FILES
    from xnai.adapters.index.faiss_index import ENCRYPTED_FILES as VECTOR_FILES
    from xnai.adapters.security.encrypted_files import EncryptedFiles

    patterns = [
        layout.MANIFEST,
        f"{layout.ORIGINALS}/*",
        *(f"{layout.INDEX}/gen-*/{name}" for name in (*ENCRYPTED_FILES, *VECTOR_FILES)),
    ]
    return EncryptedFiles("files", layout.root, patterns, keyring, USER_DATA)


def key_rotation(
    settings: Settings,
    keyring: RotatableKeyRing,
    stores: list[Reencryptable],
    store: IndexStore,
    audit: AuditSink,
) -> KeyRotation:
    """The master-key rotation over ``stores``, under the index writer lock of ``store``."""
    return KeyRotation(
        keyring,
        stores,
        store.lock,
        audit,
        max_age_days=settings.enterprise.security.key_max_age_days,
    )
