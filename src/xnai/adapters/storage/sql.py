"""Documents and chunks in SQLite (default) or PostgreSQL through SQLAlchemy Core.

With a key ring, the columns that hold document text (documents.title, chunks.text,
chunks.heading) store Fernet tokens of the user_data key; ids, sources, hashes and sizes
stay plain because lookups and dedupe need them.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    create_engine,
    delete,
    event,
    exc,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import ExceptionContext

from xnai.domain.errors import ConfigError, IntegrityError, StorageFullError
from xnai.domain.keys import USER_DATA
from xnai.domain.layout import DataLayout
from xnai.domain.models import Chunk, Document
from xnai.domain.ports import KeyRing

metadata = MetaData()

meta_table = Table(
    "xnai_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

documents = Table(
    "documents",
    metadata,
    Column("doc_id", String(64), primary_key=True),
    Column("source", Text, nullable=False, unique=True),
    Column("title", Text, nullable=False),
    Column("sha256", String(64), nullable=False, index=True),
    Column("size", Integer, nullable=False),
    Column("mime", String(128), nullable=False),
    Column("ingested_at", String(40), nullable=False),
    Column("ingested_by", String(128), nullable=False),
    Column("versions", Text, nullable=False),
    Column("collection", String(128), nullable=False, default="default"),
)

chunks = Table(
    "chunks",
    metadata,
    Column("chunk_id", String(64), primary_key=True),
    Column(
        "doc_id", String(64), ForeignKey("documents.doc_id", ondelete="CASCADE"), nullable=False
    ),
    Column("ordinal", Integer, nullable=False),
    Column("start", Integer, nullable=False),
    Column("end", Integer, nullable=False),
    Column("heading", Text, nullable=False, default=""),
    Column("text", Text, nullable=False),
    Index("ix_chunks_doc", "doc_id", "ordinal"),
)

_GENERATION = "current_generation"
_ENCRYPTED_DOC = ("title",)
_ENCRYPTED_CHUNK = ("text", "heading")


def sqlite_url(data_dir: Path) -> str:
    """Default database location inside the data directory."""
    return DataLayout(data_dir).sqlite_url


class SqlDocumentRepository:
    """The committed state: one transaction flips rows and the generation number together."""

    name = "documents and chunks"

    def __init__(self, url: str, keyring: KeyRing | None = None) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._keyring = keyring
        metadata.create_all(self.engine)

    def current_generation(self) -> int:
        """Committed generation (0 before the first commit)."""
        with self.engine.connect() as conn:
            value = conn.execute(
                select(meta_table.c.value).where(meta_table.c.key == _GENERATION)
            ).scalar()
        return int(value) if value is not None else 0

    def commit(
        self,
        generation: int,
        upserts: Sequence[tuple[Document, Sequence[Chunk]]],
        deletes: Sequence[str],
    ) -> None:
        """Replace documents and chunks and set the generation in one transaction."""
        with self.engine.begin() as conn:
            gone = list(deletes) + [doc.doc_id for doc, _ in upserts]
            if gone:
                conn.execute(delete(chunks).where(chunks.c.doc_id.in_(gone)))
                conn.execute(delete(documents).where(documents.c.doc_id.in_(gone)))
            if upserts:
                doc_rows = [self._seal(_doc_row(doc), _ENCRYPTED_DOC) for doc, _ in upserts]
                conn.execute(insert(documents), doc_rows)
                rows = [
                    self._seal(_chunk_row(c), _ENCRYPTED_CHUNK) for _, cs in upserts for c in cs
                ]
                if rows:
                    conn.execute(insert(chunks), rows)
            _set_meta(conn, _GENERATION, str(generation))

    def documents(self) -> list[Document]:
        """Every document with its chunk ids."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(documents).order_by(documents.c.source)).mappings().all()
            ids = _chunk_ids_by_doc(conn)
        return [self._document(r, ids.get(r["doc_id"], ())) for r in rows]

    def document_by_source(self, source: str) -> Document | None:
        """The document ingested from ``source``."""
        return self._one(documents.c.source == source)

    def document_by_sha(self, sha256: str) -> Document | None:
        """A document with this content hash."""
        return self._one(documents.c.sha256 == sha256)

    def document(self, doc_id: str) -> Document | None:
        """A document by id."""
        return self._one(documents.c.doc_id == doc_id)

    def chunks(self) -> list[Chunk]:
        """Every chunk in document, ordinal order."""
        with self.engine.connect() as conn:
            rows = (
                conn.execute(select(chunks).order_by(chunks.c.doc_id, chunks.c.ordinal))
                .mappings()
                .all()
            )
        return [self._chunk(r) for r in rows]

    @property
    def backend(self) -> str:
        """The database's kind: ``sqlite`` or ``postgresql``."""
        return str(self.engine.dialect.name)

    def ping(self) -> None:
        """``SELECT 1`` on a fresh connection from the pool; raise when it fails."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1")).scalar()

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

    def reencrypt(self) -> int:
        """Rewrite every encrypted column under the key ring's current key (one transaction),
        then purge the old values from the database files; return the rows rewritten."""
        if self._keyring is None:
            return 0
        with self.engine.begin() as conn:
            done = self._rewrap(conn, documents, "doc_id", _ENCRYPTED_DOC)
            done += self._rewrap(conn, chunks, "chunk_id", _ENCRYPTED_CHUNK)
        purge_old_versions(self.engine)
        return done

    def _rewrap(self, conn: Any, table: Table, key: str, columns: Sequence[str]) -> int:
        rows = conn.execute(select(table.c[key], *(table.c[c] for c in columns))).mappings().all()
        if not rows:
            return 0
        fresh = [
            {"k_" + key: row[key], **{"v_" + c: self._reseal(row[c], row[key]) for c in columns}}
            for row in rows
        ]
        stmt = (
            update(table)
            .where(table.c[key] == bindparam("k_" + key))
            .values({c: bindparam("v_" + c) for c in columns})
        )
        conn.execute(stmt, fresh)
        return len(rows)

    def _reseal(self, value: str, row_id: str) -> str:
        assert self._keyring is not None
        plain = self._open_value(value, row_id)
        return self._keyring.encrypt(USER_DATA, plain.encode("utf-8")).decode("utf-8")

    def _seal(self, row: dict[str, Any], columns: Sequence[str]) -> dict[str, Any]:
        """``row`` with ``columns`` encrypted."""
        if self._keyring is not None:
            for c in columns:
                # A token is ASCII; with encryption off the text passes through as UTF-8.
                row[c] = self._keyring.encrypt(USER_DATA, row[c].encode("utf-8")).decode("utf-8")
        return row

    def _open_value(self, value: str, row_id: str) -> str:
        """The plaintext of one stored value; IntegrityError names the row."""
        if self._keyring is None:
            return value
        try:
            return self._keyring.decrypt(USER_DATA, value.encode("utf-8")).decode("utf-8")
        except IntegrityError as exc:
            raise IntegrityError(f"database row {row_id}: {exc}") from None

    def _document(self, row: Any, chunk_ids: Sequence[str]) -> Document:
        plain = {**row, "title": self._open_value(row["title"], row["doc_id"])}
        return _to_document(plain, chunk_ids)

    def _chunk(self, row: Any) -> Chunk:
        plain = dict(row)
        for c in _ENCRYPTED_CHUNK:
            plain[c] = self._open_value(row[c], row["chunk_id"])
        return _to_chunk(plain)

    def _one(self, where: Any) -> Document | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(documents).where(where).limit(1)).mappings().first()
            if row is None:
                return None
            ids = (
                conn.execute(
                    select(chunks.c.chunk_id)
                    .where(chunks.c.doc_id == row["doc_id"])
                    .order_by(chunks.c.ordinal)
                )
                .scalars()
                .all()
            )
        return self._document(row, tuple(ids))


def outage_errors() -> tuple[type[Exception], ...]:
    """Errors that mean the database cannot be reached now (refused or lost connections, a
    locked SQLite file, an exhausted pool), as opposed to a bad query."""
    return (exc.OperationalError, exc.InterfaceError, exc.TimeoutError)


BAD_URL = (
    "storage.database_url is not a database URL SQLAlchemy understands, e.g. "
    "postgresql+psycopg://user@host:5432/name (the value is not shown: it may hold a password)"
)


def _engine(url: str, **options: Any) -> Engine:
    """``create_engine``, with a malformed URL reported without repeating it."""
    try:
        return create_engine(url, **options)
    except (exc.ArgumentError, ValueError):
        raise ConfigError(BAD_URL) from None


def make_engine(url: str) -> Engine:
    """An engine for ``url``; a SQLite file is created owner-only, in WAL mode. A database
    whose disk is full raises StorageFullError (its transaction is rolled back)."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        engine = _engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = _engine(url, pool_pre_ping=True)
    event.listen(engine, "handle_error", _full_disk)
    return engine


# SQLite's "database or disk is full"; PostgreSQL's SQLSTATE class 53100 (disk_full).
_SQLITE_FULL = sqlite3.SQLITE_FULL
_PG_DISK_FULL = "53100"
DATABASE_FULL = (
    "the disk is full: the database could not be written and nothing was changed; "
    "free disk space (or raise the quota) and try again"
)


def _full_disk(context: ExceptionContext) -> None:
    """Raise StorageFullError in place of the driver's error when the disk is full."""
    orig = context.original_exception
    code = getattr(orig, "sqlite_errorcode", None)
    full = (
        (isinstance(code, int) and code & 0xFF == _SQLITE_FULL)
        or _PG_DISK_FULL in (getattr(orig, "sqlstate", None), getattr(orig, "pgcode", None))
        or (isinstance(orig, OSError) and orig.errno in (errno.ENOSPC, errno.EDQUOT))
    )
    if full:
        raise StorageFullError(DATABASE_FULL) from orig


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the server read while an ingest writes; FULL sync makes a commit durable.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    # Deleted and overwritten rows are zeroed, so replaced text leaves no trace in the file.
    cur.execute("PRAGMA secure_delete=ON")
    cur.close()


def purge_old_versions(engine: Engine, tables: Sequence[str] = ("documents", "chunks")) -> None:
    """Remove superseded and deleted row versions of ``tables`` from the database's files.

    SQLite: secure_delete zeroed them in the pages; a checkpoint copies those pages into
    the main file and truncates the write-ahead log that still held the old ones.
    PostgreSQL: VACUUM FULL rewrites the tables without their dead row versions.
    """
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    elif engine.dialect.name == "postgresql":
        quote = engine.dialect.identifier_preparer.quote
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM FULL " + ", ".join(quote(t) for t in tables))


def database_has_rows(url: str) -> bool:
    """True when the database at ``url`` exists and any of its tables holds a row."""
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        return False
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            for table in inspect(conn).get_table_names():
                quoted = conn.dialect.identifier_preparer.quote(table)
                if conn.execute(text(f"SELECT 1 FROM {quoted} LIMIT 1")).first():
                    return True
        return False
    finally:
        engine.dispose()


def _set_meta(conn: Any, key: str, value: str) -> None:
    done = conn.execute(update(meta_table).where(meta_table.c.key == key).values(value=value))
    if done.rowcount == 0:
        conn.execute(insert(meta_table).values(key=key, value=value))


def _chunk_ids_by_doc(conn: Any) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    rows = conn.execute(
        select(chunks.c.doc_id, chunks.c.chunk_id).order_by(chunks.c.doc_id, chunks.c.ordinal)
    )
    for doc_id, chunk_id in rows:
        out.setdefault(doc_id, []).append(chunk_id)
    return {k: tuple(v) for k, v in out.items()}


def _doc_row(doc: Document) -> dict[str, Any]:
    row = asdict(doc)
    del row["chunk_ids"]  # rows of the chunks table
    row["versions"] = json.dumps(doc.versions, sort_keys=True)
    return row


def _chunk_row(chunk: Chunk) -> dict[str, Any]:
    return asdict(chunk)


def _to_document(row: Any, chunk_ids: Sequence[str]) -> Document:
    return Document(
        doc_id=row["doc_id"],
        source=row["source"],
        title=row["title"],
        sha256=row["sha256"],
        size=row["size"],
        mime=row["mime"],
        ingested_at=row["ingested_at"],
        ingested_by=row["ingested_by"],
        chunk_ids=tuple(chunk_ids),
        versions=json.loads(row["versions"]),
        collection=row["collection"],
    )


def _to_chunk(row: Any) -> Chunk:
    return Chunk(**dict(row))  # the columns are the fields
