"""Users, sessions, API keys and failed-login counters in SQLite or PostgreSQL (SQLAlchemy Core).

Times are stored as UTC epoch seconds. Counters and one-time-code steps change in single
conditional statements, so parallel requests and several server processes stay correct.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Connection,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    and_,
    case,
    delete,
    func,
    insert,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from xnai.adapters.storage.sql import make_engine, purge_old_versions
from xnai.domain.errors import ConflictError
from xnai.domain.identity import ApiKeyRecord, Attempt, FailureWindow, SessionRecord, User
from xnai.domain.rbac import Role

metadata = MetaData()


def _owner() -> Column[str]:
    """The user a session or API key belongs to (removed with the user)."""
    return Column(
        "user_id",
        String(32),
        ForeignKey("users.user_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    )


users = Table(
    "users",
    metadata,
    Column("user_id", String(32), primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_at", Float, nullable=False),
    Column("password_changed_at", Float, nullable=False),
    Column("mfa_secret", LargeBinary, nullable=True),
    Column("mfa_enrolled", Boolean, nullable=False, default=False),
    Column("mfa_last_step", BigInteger, nullable=True),
)

sessions = Table(
    "sessions",
    metadata,
    Column("session_id", String(32), primary_key=True),
    _owner(),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("last_seen_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
    Column("source_ip", String(64), nullable=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    _owner(),
    Column("name", String(64), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=True),
    Column("last_used_at", Float, nullable=True),
    Column("revoked_at", Float, nullable=True),
)

login_failures = Table(
    "login_failures",
    metadata,
    # sha256 of the normalised username: names typed by mistake (often a password) are
    # never stored in clear.
    Column("name_key", String(64), primary_key=True),
    Column("failures", Integer, nullable=False, default=0),
    Column("locked_until", Float, nullable=True),
    Column("updated_at", Float, nullable=False),
)

login_throttle = Table(
    "login_throttle",
    metadata,
    # One row per failed login per key: a digest of the client's address, or "*" for the
    # count over every client. Rows older than the window are purged.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(64), nullable=False),
    Column("at", Float, nullable=False),
    Index("ix_login_throttle_key_at", "key", "at"),
)


class SqlIdentityRepository:
    """The UserRepository port over SQLAlchemy Core."""

    def __init__(self, engine: Engine | str) -> None:
        self._owns_engine = isinstance(engine, str)
        self.engine = make_engine(engine) if isinstance(engine, str) else engine
        metadata.create_all(self.engine)

    # users ------------------------------------------------------------------

    def add_user(self, user: User) -> None:
        """Insert; ConflictError when the username is taken."""
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(users).values(**_user_row(user)))
        except SqlIntegrityError:
            raise ConflictError(f"the username {user.username!r} is taken") from None

    def user(self, user_id: str) -> User | None:
        """A user by id."""
        return self._one_user(users.c.user_id == user_id)

    def user_by_name(self, username: str) -> User | None:
        """A user by (lower-case) name."""
        return self._one_user(users.c.username == username)

    def users(self) -> list[User]:
        """Every user, by name."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(users).order_by(users.c.username)).mappings().all()
        return [_to_user(r) for r in rows]

    def count_users(self) -> int:
        """How many users exist."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(users)).scalar_one())

    def set_role(self, user_id: str, role: Role) -> bool:
        """Change the role unless it removes the last enabled admin."""
        return self._guarded_update(user_id, {"role": role.value}, role is Role.ADMIN)

    def set_enabled(self, user_id: str, enabled: bool) -> bool:
        """Enable or disable unless it removes the last enabled admin."""
        return self._guarded_update(user_id, {"enabled": enabled}, enabled)

    def set_password(self, user_id: str, password_hash: str, changed_at: datetime) -> None:
        """Store a new password hash."""
        self._update_user(
            user_id, password_hash=password_hash, password_changed_at=changed_at.timestamp()
        )

    def set_mfa(self, user_id: str, secret: bytes | None, enrolled: bool) -> None:
        """Store or clear the TOTP secret; a new secret starts with no used step."""
        self._update_user(user_id, mfa_secret=secret, mfa_enrolled=enrolled, mfa_last_step=None)

    def replace_mfa_secret(self, user_id: str, secret: bytes) -> None:
        """Rewrite the stored secret only (a key rotation)."""
        self._update_user(user_id, mfa_secret=secret)

    def use_totp_step(self, user_id: str, step: int) -> bool:
        """Record ``step`` as used unless it or a later step already was."""
        stmt = (
            update(users)
            .where(
                users.c.user_id == user_id,
                or_(users.c.mfa_last_step.is_(None), users.c.mfa_last_step < step),
            )
            .values(mfa_last_step=step)
        )
        with self.engine.begin() as conn:
            return conn.execute(stmt).rowcount == 1

    # sessions and API keys ----------------------------------------------------

    def add_session(self, session: SessionRecord) -> None:
        """Store a new session."""
        with self.engine.begin() as conn:
            conn.execute(insert(sessions).values(**_session_row(session)))

    def session(self, session_id: str) -> SessionRecord | None:
        """A session by id."""
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(sessions).where(sessions.c.session_id == session_id))
                .mappings()
                .first()
            )
        return _to_session(row) if row is not None else None

    def touch_session(self, session_id: str, at: datetime) -> None:
        """Record activity (the idle timeout counts from here)."""
        t = at.timestamp()
        with self.engine.begin() as conn:
            conn.execute(
                update(sessions)
                .where(sessions.c.session_id == session_id, sessions.c.last_seen_at < t)
                .values(last_seen_at=t)
            )

    def revoke_session(self, session_id: str, at: datetime) -> bool:
        """Revoke one session."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(sessions)
                .where(sessions.c.session_id == session_id, sessions.c.revoked_at.is_(None))
                .values(revoked_at=at.timestamp())
            )
        return done.rowcount == 1

    def revoke_credentials(self, user_id: str, at: datetime) -> int:
        """Revoke every session and API key of a user in one transaction."""
        t = at.timestamp()
        with self.engine.begin() as conn:
            n = 0
            for table in (sessions, api_keys):
                n += conn.execute(
                    update(table)
                    .where(table.c.user_id == user_id, table.c.revoked_at.is_(None))
                    .values(revoked_at=t)
                ).rowcount
        return n

    def delete_user(self, user_id: str, name_key: str) -> bool:
        """Delete a user with their sessions, API keys and failed-login count, in one
        transaction; False when the user is the last enabled admin (or unknown)."""
        try:
            with self.engine.begin() as conn:
                _lock_admins(conn)
                for table in (sessions, api_keys):
                    conn.execute(delete(table).where(table.c.user_id == user_id))
                gone = conn.execute(
                    delete(users).where(users.c.user_id == user_id, not_(_last_admin(user_id)))
                )
                if gone.rowcount != 1:
                    raise _Refused
                conn.execute(delete(login_failures).where(login_failures.c.name_key == name_key))
        except _Refused:
            return False
        # The deleted rows (password hash, keys) must not survive in the write-ahead log.
        purge_old_versions(self.engine, ("users", "sessions", "api_keys", "login_failures"))
        return True

    def sessions_of(self, user_id: str) -> list[SessionRecord]:
        """Every stored session of a user, newest first."""
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    select(sessions)
                    .where(sessions.c.user_id == user_id)
                    .order_by(sessions.c.created_at.desc())
                )
                .mappings()
                .all()
            )
        return [_to_session(r) for r in rows]

    def purge_sessions(self, before: datetime) -> int:
        """Delete sessions not used since ``before`` (and those revoked before it)."""
        t = before.timestamp()
        with self.engine.begin() as conn:
            return conn.execute(
                delete(sessions).where(or_(sessions.c.last_seen_at < t, sessions.c.revoked_at < t))
            ).rowcount

    def add_api_key(self, key: ApiKeyRecord) -> None:
        """Store a new API key."""
        with self.engine.begin() as conn:
            conn.execute(insert(api_keys).values(**_key_row(key)))

    def api_key(self, key_id: str) -> ApiKeyRecord | None:
        """An API key by id."""
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).mappings().first()
            )
        return _to_key(row) if row is not None else None

    def api_keys(self, user_id: str) -> list[ApiKeyRecord]:
        """A user's API keys, oldest first."""
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    select(api_keys)
                    .where(api_keys.c.user_id == user_id)
                    .order_by(api_keys.c.created_at, api_keys.c.key_id)
                )
                .mappings()
                .all()
            )
        return [_to_key(r) for r in rows]

    def touch_api_key(self, key_id: str, at: datetime) -> None:
        """Record when a key was last used."""
        with self.engine.begin() as conn:
            conn.execute(
                update(api_keys)
                .where(api_keys.c.key_id == key_id)
                .values(last_used_at=at.timestamp())
            )

    def revoke_api_key(self, key_id: str, at: datetime) -> bool:
        """Revoke one API key."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(api_keys)
                .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=at.timestamp())
            )
        return done.rowcount == 1

    # failed logins --------------------------------------------------------------

    def begin_attempt(
        self, name_key: str, now: datetime, threshold: int, lock_seconds: int
    ) -> Attempt:
        """Count one attempt in a single conditional UPDATE (refused while locked)."""
        t = now.timestamp()
        lf = login_failures
        expired = and_(lf.c.locked_until.is_not(None), lf.c.locked_until <= t)
        count = case((expired, 1), else_=lf.c.failures + 1)
        stmt = (
            update(lf)
            .where(lf.c.name_key == name_key, or_(lf.c.locked_until.is_(None), expired))
            .values(
                failures=count,
                locked_until=case((count >= threshold, t + lock_seconds), else_=None),
                updated_at=t,
            )
            .returning(lf.c.failures, lf.c.locked_until)
        )
        with self.engine.begin() as conn:
            conn.execute(self._insert_missing(name_key, t))
            row = conn.execute(stmt).first()
            if row is not None:
                return Attempt(True, int(row[0]), _dt(row[1]))
            state = conn.execute(
                select(lf.c.failures, lf.c.locked_until).where(lf.c.name_key == name_key)
            ).one()
        return Attempt(False, int(state[0]), _dt(state[1]))

    def release_attempt(self, name_key: str, threshold: int) -> None:
        """Uncount one attempt (and lift a lock it caused)."""
        lf = login_failures
        with self.engine.begin() as conn:
            conn.execute(
                update(lf)
                .where(lf.c.name_key == name_key, lf.c.failures > 0)
                .values(
                    failures=lf.c.failures - 1,
                    locked_until=case(
                        (lf.c.failures - 1 < threshold, None), else_=lf.c.locked_until
                    ),
                )
            )

    def clear_failures(self, name_key: str) -> None:
        """Forget the count and the lock."""
        with self.engine.begin() as conn:
            conn.execute(delete(login_failures).where(login_failures.c.name_key == name_key))

    def failure_state(self, name_key: str) -> Attempt:
        """The count and lock; ``allowed`` is True when no lock is recorded."""
        lf = login_failures
        with self.engine.connect() as conn:
            row = conn.execute(
                select(lf.c.failures, lf.c.locked_until).where(lf.c.name_key == name_key)
            ).first()
        if row is None:
            return Attempt(True, 0, None)
        return Attempt(row[1] is None, int(row[0]), _dt(row[1]))

    def note_failures(self, keys: Sequence[str], at: datetime) -> None:
        """One row per key, in one transaction."""
        if keys:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(login_throttle), [{"key": k, "at": at.timestamp()} for k in keys]
                )

    def failures_since(self, key: str, since: datetime) -> FailureWindow:
        """Count and oldest time of the rows under ``key`` after ``since`` (one index range)."""
        lt = login_throttle
        stmt = select(func.count(), func.min(lt.c.at)).where(
            lt.c.key == key, lt.c.at > since.timestamp()
        )
        with self.engine.connect() as conn:
            count, oldest = conn.execute(stmt).one()
        return FailureWindow(int(count), _dt(oldest))

    def purge_failures(self, before: datetime, now: datetime) -> int:
        """Delete throttle rows before ``before`` and unlocked name counts not changed since."""
        t, lf = before.timestamp(), login_failures
        unlocked = or_(lf.c.locked_until.is_(None), lf.c.locked_until <= now.timestamp())
        with self.engine.begin() as conn:
            gone = conn.execute(delete(login_throttle).where(login_throttle.c.at < t)).rowcount
            gone += conn.execute(delete(lf).where(lf.c.updated_at < t, unlocked)).rowcount
        return int(gone)

    def close(self) -> None:
        """Release connections when the engine is ours."""
        if self._owns_engine:
            self.engine.dispose()

    # helpers --------------------------------------------------------------------

    def _insert_missing(self, name_key: str, t: float) -> Any:
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return (
            dialect.insert(login_failures)
            .values(name_key=name_key, failures=0, locked_until=None, updated_at=t)
            .on_conflict_do_nothing(index_elements=["name_key"])
        )

    def _one_user(self, where: Any) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(where).limit(1)).mappings().first()
        return _to_user(row) if row is not None else None

    def _update_user(self, user_id: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(users).where(users.c.user_id == user_id).values(**values))

    def _guarded_update(self, user_id: str, values: dict[str, Any], stays_admin: bool) -> bool:
        with self.engine.begin() as conn:
            _lock_admins(conn)
            stmt = update(users).where(users.c.user_id == user_id).values(**values)
            if not stays_admin:
                stmt = stmt.where(not_(_last_admin(user_id)))
            return conn.execute(stmt).rowcount == 1


def _lock_admins(conn: Connection) -> None:
    """Lock the rows of the enabled admins for the transaction.

    PostgreSQL: two concurrent demotions or deletions serialise on these rows; SQLite
    renders no FOR UPDATE and runs each write statement alone anyway.
    """
    conn.execute(
        select(users.c.user_id)
        .where(users.c.role == Role.ADMIN.value, users.c.enabled)
        .with_for_update()
    )


def _last_admin(user_id: str) -> ColumnElement[bool]:
    """True on the row of ``user_id`` when it is the only enabled admin."""
    other = users.alias("other_admins")
    others = (
        select(func.count())
        .select_from(other)
        .where(other.c.role == Role.ADMIN.value, other.c.enabled, other.c.user_id != user_id)
        .scalar_subquery()
    )
    return and_(users.c.role == Role.ADMIN.value, users.c.enabled, others == 0)


class _Refused(Exception):
    """Rolls a transaction back when a guarded statement changed nothing."""


def _dt(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _user_row(user: User) -> dict[str, Any]:
    return {
        "user_id": user.user_id,
        "username": user.username,
        "role": user.role.value,
        "password_hash": user.password_hash,
        "enabled": user.enabled,
        "created_at": user.created_at.timestamp(),
        "password_changed_at": user.password_changed_at.timestamp(),
        "mfa_secret": user.mfa_secret,
        "mfa_enrolled": user.mfa_enrolled,
        "mfa_last_step": user.mfa_last_step,
    }


def _to_user(row: Any) -> User:
    secret = row["mfa_secret"]
    return User(
        user_id=row["user_id"],
        username=row["username"],
        role=Role(row["role"]),
        password_hash=row["password_hash"],
        created_at=datetime.fromtimestamp(row["created_at"], UTC),
        password_changed_at=datetime.fromtimestamp(row["password_changed_at"], UTC),
        enabled=bool(row["enabled"]),
        mfa_secret=bytes(secret) if secret is not None else None,
        mfa_enrolled=bool(row["mfa_enrolled"]),
        mfa_last_step=row["mfa_last_step"],
    )


def _session_row(s: SessionRecord) -> dict[str, Any]:
    return {
        "session_id": s.session_id,
        "user_id": s.user_id,
        "secret_hash": s.secret_hash,
        "created_at": s.created_at.timestamp(),
        "last_seen_at": s.last_seen_at.timestamp(),
        "revoked_at": _ts(s.revoked_at),
        "source_ip": s.source_ip,
    }


def _to_session(row: Any) -> SessionRecord:
    return SessionRecord(
        session_id=row["session_id"],
        user_id=row["user_id"],
        secret_hash=row["secret_hash"],
        created_at=datetime.fromtimestamp(row["created_at"], UTC),
        last_seen_at=datetime.fromtimestamp(row["last_seen_at"], UTC),
        revoked_at=_dt(row["revoked_at"]),
        source_ip=row["source_ip"],
    )


def _key_row(k: ApiKeyRecord) -> dict[str, Any]:
    return {
        "key_id": k.key_id,
        "user_id": k.user_id,
        "name": k.name,
        "secret_hash": k.secret_hash,
        "created_at": k.created_at.timestamp(),
        "expires_at": _ts(k.expires_at),
        "last_used_at": _ts(k.last_used_at),
        "revoked_at": _ts(k.revoked_at),
    }


def _to_key(row: Any) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=row["key_id"],
        user_id=row["user_id"],
        name=row["name"],
        secret_hash=row["secret_hash"],
        created_at=datetime.fromtimestamp(row["created_at"], UTC),
        expires_at=_dt(row["expires_at"]),
        last_used_at=_dt(row["last_used_at"]),
        revoked_at=_dt(row["revoked_at"]),
    )
