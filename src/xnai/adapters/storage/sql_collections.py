"""Collections and their access lists in the documents database (SQLite or PostgreSQL)."""

from __future__ import annotations

import json
from contextlib import suppress
from typing import Any

from sqlalchemy import (
    Column,
    Engine,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    inspect,
    select,
)
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from xnai.adapters.storage.sql import meta_table
from xnai.adapters.storage.sql_identity import users
from xnai.domain.access import Collection, default_collection
from xnai.domain.errors import ConflictError, NotFoundError

metadata = MetaData()

collections = Table(
    "collections",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("description", Text, nullable=False, default=""),
    # JSON arrays of role values and of user ids (usernames before grants by id).
    Column("readable_roles", Text, nullable=False, default="[]"),
    Column("readable_users", Text, nullable=False, default="[]"),
    Column("writable_roles", Text, nullable=False, default="[]"),
    Column("writable_users", Text, nullable=False, default="[]"),
)

_LISTS = ("readable_roles", "readable_users", "writable_roles", "writable_users")
_USER_LISTS = ("readable_users", "writable_users")
_GRANTS_BY_ID = "collection_grants_by_user_id"


class SqlCollectionStore:
    """The ``collections`` table; created with the ``default`` collection on first use."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        fresh = not inspect(engine).has_table(collections.name)
        metadata.create_all(engine)
        meta_table.create(engine, checkfirst=True)
        grants_by_user_id(engine)
        if fresh:
            # Only when the table is new: an admin may later change or remove "default".
            with suppress(ConflictError):  # another process created it first
                self.create(default_collection())

    def list(self) -> list[Collection]:
        """Every collection, by name."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(collections).order_by(collections.c.name)).mappings()
            return [_to_collection(r) for r in rows]

    def get(self, name: str) -> Collection | None:
        """A collection by name."""
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(collections).where(collections.c.name == name))
                .mappings()
                .first()
            )
        return _to_collection(row) if row is not None else None

    def create(self, collection: Collection) -> None:
        """Add a collection; ConflictError when the name is taken."""
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(collections).values(**_row(collection)))
        except SqlIntegrityError as exc:
            raise ConflictError(f"a collection named {collection.name!r} exists") from exc

    def replace(self, collection: Collection) -> None:
        """Overwrite a collection's description and lists; NotFoundError when unknown."""
        row = _row(collection)
        del row["name"]
        with self.engine.begin() as conn:
            done = conn.execute(
                sql_update(collections).where(collections.c.name == collection.name).values(**row)
            )
        if done.rowcount == 0:
            raise NotFoundError(f"no collection named {collection.name!r}")

    def delete(self, name: str) -> bool:
        """Remove a collection; False when there was none."""
        with self.engine.begin() as conn:
            done = conn.execute(delete(collections).where(collections.c.name == name))
        return bool(done.rowcount)


def _row(c: Collection) -> dict[str, Any]:
    row: dict[str, Any] = {"name": c.name, "description": c.description}
    for key in _LISTS:
        row[key] = json.dumps(sorted(set(getattr(c, key))))
    return row


def _to_collection(row: Any) -> Collection:
    lists = {key: tuple(str(v) for v in json.loads(row[key])) for key in _LISTS}
    return Collection(row["name"], row["description"], **lists)


def grants_by_user_id(engine: Engine) -> int:
    """Once per database: rewrite the user lists of older versions, which named users by
    id or username, to user ids only; a name of no account is dropped, so an account made
    later under that name inherits nothing. Returns the collections changed."""
    if not inspect(engine).has_table(users.name):
        return 0  # no accounts yet: nothing to resolve, and names never match a reader
    try:
        return _rewrite_grants(engine)
    except SqlIntegrityError:  # another process did it at the same time
        return 0


def _rewrite_grants(engine: Engine) -> int:
    with engine.begin() as conn:
        done = conn.execute(select(meta_table.c.value).where(meta_table.c.key == _GRANTS_BY_ID))
        if done.first() is not None:
            return 0
        ids = {r.user_id: r.user_id for r in conn.execute(select(users.c.user_id))}
        names = {
            r.username: r.user_id for r in conn.execute(select(users.c.username, users.c.user_id))
        }
        changed = 0
        for row in conn.execute(select(collections)).mappings().all():
            new = {}
            for key in _USER_LISTS:
                old = [str(v) for v in json.loads(row[key])]
                resolved = {str(found) for v in old if (found := ids.get(v) or names.get(v))}
                if resolved != set(old):
                    new[key] = json.dumps(sorted(resolved))
            if new:
                conn.execute(
                    sql_update(collections).where(collections.c.name == row["name"]).values(**new)
                )
                changed += 1
        conn.execute(meta_table.insert().values(key=_GRANTS_BY_ID, value="1"))
    return changed
