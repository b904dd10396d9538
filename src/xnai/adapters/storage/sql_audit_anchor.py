"""The audit log's anchor copy in the database (SQLite or PostgreSQL): table ``audit_anchor``."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Engine, MetaData, String, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from xnai.adapters.storage.sql import make_engine
from xnai.domain.audit import AuditAnchor

metadata = MetaData()

audit_anchor = Table(
    "audit_anchor",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("mac", String(64), nullable=False),
)


class SqlAnchorStore:
    """The ``AnchorStore`` port: one row per audit log, named ``name``."""

    def __init__(self, engine: Engine | str, *, name: str = "audit") -> None:
        self.engine = make_engine(engine) if isinstance(engine, str) else engine
        self.name = name
        metadata.create_all(self.engine)

    def load(self) -> AuditAnchor | None:
        """The last anchor saved; None when none was ever saved."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(audit_anchor.c.seq, audit_anchor.c.mac).where(
                    audit_anchor.c.name == self.name
                )
            ).first()
        return AuditAnchor(int(row.seq), str(row.mac)) if row is not None else None

    def save(self, anchor: AuditAnchor) -> None:
        """Replace the stored anchor in one statement (an upsert, safe for parallel savers)."""
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        values = {"seq": anchor.seq, "mac": anchor.mac}
        stmt = (
            dialect.insert(audit_anchor)
            .values(name=self.name, **values)
            .on_conflict_do_update(index_elements=[audit_anchor.c.name], set_=values)
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)
