"""Documents and chunks in SQLite (default) or PostgreSQL through SQLAlchemy Core."""

from __future__ import annotations

import json
import os
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
    create_engine,
    delete,
    event,
    insert,
    select,
    update,
)

from xnai.domain.models import Chunk, Document

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


def sqlite_url(data_dir: Path) -> str:
    """Default database location inside the data directory."""
    return f"sqlite:///{data_dir / 'xnai.db'}"


class SqlDocumentRepository:
    """The committed state: one transaction flips rows and the generation number together."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _make_engine(url)
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
                conn.execute(insert(documents), [_doc_row(doc) for doc, _ in upserts])
                rows = [_chunk_row(c) for _, cs in upserts for c in cs]
                if rows:
                    conn.execute(insert(chunks), rows)
            _set_meta(conn, _GENERATION, str(generation))

    def documents(self) -> list[Document]:
        """Every document with its chunk ids."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(documents).order_by(documents.c.source)).mappings().all()
            ids = _chunk_ids_by_doc(conn)
        return [_to_document(r, ids.get(r["doc_id"], ())) for r in rows]

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
        return [_to_chunk(r) for r in rows]

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

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
        return _to_document(row, tuple(ids))


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the server read while an ingest writes; FULL sync makes a commit durable.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


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
