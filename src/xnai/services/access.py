"""Who may read and write which collections, and the access scope of a principal.

Deny by default: a document is visible to a principal only when the principal is an admin
or the document's collection lists the principal's role or user id. Users may be named by
username when granting; the grant stores their user id. A document whose collection does not
exist is visible to admins only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace

from xnai.domain.access import COLLECTION_NAME, AccessScope, Collection, CollectionStore
from xnai.domain.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from xnai.domain.limits import MAX_COLLECTION_DESCRIPTION_CHARS
from xnai.domain.models import Document
from xnai.domain.ports import AuditSink
from xnai.domain.rbac import Principal, Role
from xnai.services.audit import audited
from xnai.services.knowledge import Source

Failure = tuple[str, Exception]
_ELSEWHERE = "already in collection "


class AccessService:
    """Collection rules turned into access scopes, plus the admin operations on them.

    The collection list is cached for ``ttl_s`` seconds: changes made through this service
    apply at once, changes made by another process within ``ttl_s``.
    """

    def __init__(
        self,
        store: CollectionStore,
        documents: Callable[[], Iterable[Document]],
        *,
        ttl_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        audit: AuditSink | None = None,
        user_id_of: Callable[[str], str | None] | None = None,
    ) -> None:
        self.store = store
        self.audit = audit
        # Resolves a user id or username to the user id (None when unknown); without it,
        # the values granted are taken to be user ids.
        self._user_id_of = user_id_of
        self._documents = documents
        self.ttl_s = ttl_s
        self._clock = clock
        self._cached: tuple[float, dict[str, Collection]] | None = None
        self._lock = threading.Lock()

    # -- reading ---------------------------------------------------------------------------

    def collections(self) -> dict[str, Collection]:
        """Every collection by name (cached for ``ttl_s``)."""
        now = self._clock()
        cached = self._cached
        if cached is not None and now - cached[0] < self.ttl_s:
            return cached[1]
        with self._lock:
            fresh = {c.name: c for c in self.store.list()}
            self._cached = (now, fresh)
            return fresh

    def scope_for(self, principal: Principal) -> AccessScope:
        """What ``principal`` may read: every collection for admins, else those listing it."""
        if principal.is_admin:
            return AccessScope.everything(principal.user_id)
        readable = [c.name for c in self.collections().values() if c.readable_by(principal)]
        return AccessScope.only(readable, principal.user_id)

    def readable(self, principal: Principal) -> list[Collection]:
        """The collections ``principal`` may read, by name."""
        return [c for c in self.collections().values() if c.readable_by(principal)]

    def can_read(self, principal: Principal, collection: str) -> bool:
        """Whether ``principal`` may read documents of ``collection`` (unknown: admins only)."""
        found = self.collections().get(collection)
        return principal.is_admin or (found is not None and found.readable_by(principal))

    def check_read(self, principal: Principal, document: Document) -> None:
        """NotFoundError unless ``principal`` may read ``document`` (its existence stays
        hidden from those who may not)."""
        if not self.can_read(principal, document.collection):
            raise NotFoundError(f"no document with id or source {document.doc_id!r}")

    def check_write(self, principal: Principal, collection: str) -> None:
        """NotFoundError for a collection ``principal`` can neither read nor write (or that
        does not exist), PermissionDeniedError when it may read but not write it."""
        found = self.collections().get(collection)
        if found is None or not (found.readable_by(principal) or found.writable_by(principal)):
            raise NotFoundError(_no_collection(collection))
        if not found.writable_by(principal):
            raise PermissionDeniedError(
                f"{principal.username} may read but not change collection {collection!r}"
            )

    def visible(self, principal: Principal, documents: Iterable[Document]) -> list[Document]:
        """The documents ``principal`` may read, in the order given."""
        scope = self.scope_for(principal)
        return [d for d in documents if scope.allows(d.collection)]

    def check_remove(self, principal: Principal, document: Document) -> None:
        """NotFoundError unless ``principal`` may read ``document``, PermissionDeniedError
        unless it may also write its collection."""
        self.check_read(principal, document)
        if not principal.is_admin:
            self.check_write(principal, document.collection)

    def hide_failures(
        self, principal: Principal, failed: Sequence[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        """Ingest failures as ``principal`` may see them: a duplicate of a document it may
        not read is reported without naming that document."""
        if principal.is_admin:
            return list(failed)
        readable = {d.source for d in self.visible(principal, self._documents())}
        out = []
        for source, reason in failed:
            twin = _duplicate_of(reason)
            if twin is not None and twin not in readable:
                reason = "duplicate content of a document already in the library (same sha256)"
            elif reason.startswith(_ELSEWHERE):
                reason = "a document of this name is in another collection"
            out.append((source, reason))
        return out

    def require(self, name: str) -> Collection:
        """The collection named ``name``; NotFoundError when there is none."""
        found = self.store.get(name)
        if found is None:
            raise NotFoundError(_no_collection(name))
        return found

    def document_counts(self) -> dict[str, int]:
        """Number of committed documents per collection name."""
        counts: dict[str, int] = {}
        for doc in self._documents():
            counts[doc.collection] = counts.get(doc.collection, 0) + 1
        return counts

    # -- changing --------------------------------------------------------------------------

    def create(
        self,
        name: str,
        *,
        description: str = "",
        readable_roles: Sequence[str] = (),
        readable_users: Sequence[str] = (),
        writable_roles: Sequence[str] = (),
        writable_users: Sequence[str] = (),
        actor: str | None = None,
    ) -> Collection:
        """Add a collection; ConflictError when the name is taken. ``actor`` (a user id) is
        recorded in the audit trail, as for every change below."""
        if len(description) > MAX_COLLECTION_DESCRIPTION_CHARS:
            raise InvalidInputError(
                f"a collection description has at most {MAX_COLLECTION_DESCRIPTION_CHARS} "
                f"characters, not {len(description)}"
            )
        collection = Collection(
            check_name(name),
            description.strip(),
            readable_roles=check_roles(readable_roles),
            readable_users=self.user_ids(readable_users),
            writable_roles=check_roles(writable_roles),
            writable_users=self.user_ids(writable_users),
        )
        with self._audited("create", collection, actor):
            self.store.create(collection)
        self._forget()
        return collection

    def grant(
        self,
        name: str,
        *,
        roles: Sequence[str] = (),
        users: Sequence[str] = (),
        write: bool = False,
        actor: str | None = None,
    ) -> Collection:
        """Add roles and users to the read list (and with ``write`` to the write list too:
        who may write may also read)."""
        current = self.require(name)
        roles, users = check_roles(roles), self.user_ids(users)
        changed = replace(
            current,
            readable_roles=_union(current.readable_roles, roles),
            readable_users=_union(current.readable_users, users),
        )
        if write:
            changed = replace(
                changed,
                writable_roles=_union(current.writable_roles, roles),
                writable_users=_union(current.writable_users, users),
            )
        return self._replace(changed, "grant", actor)

    def revoke(
        self,
        name: str,
        *,
        roles: Sequence[str] = (),
        users: Sequence[str] = (),
        write_only: bool = False,
        actor: str | None = None,
    ) -> Collection:
        """Take roles and users off the write list, and off the read list too unless
        ``write_only``."""
        current = self.require(name)
        gone_roles, gone_users = set(check_roles(roles)), self._known_ids(users)
        changed = replace(
            current,
            writable_roles=_minus(current.writable_roles, gone_roles),
            writable_users=_minus(current.writable_users, gone_users),
        )
        if not write_only:
            changed = replace(
                changed,
                readable_roles=_minus(current.readable_roles, gone_roles),
                readable_users=_minus(current.readable_users, gone_users),
            )
        return self._replace(changed, "revoke", actor)

    def remove(self, name: str, *, actor: str | None = None) -> None:
        """Delete an empty collection; ConflictError while documents belong to it."""
        held = self.document_counts().get(name, 0)
        if held:
            raise ConflictError(
                f"collection {name!r} still holds {held} document(s): remove them first"
            )
        self.require(name)  # an unknown name is refused before anything is recorded
        with self._audited("remove", Collection(name), actor):
            if not self.store.delete(name):
                raise NotFoundError(_no_collection(name))
        self._forget()

    def forget_user(
        self, user_id: str, *, also: Sequence[str] = (), actor: str | None = None
    ) -> int:
        """Take a user (by id, and by the names in ``also`` left from older versions) off
        every collection; return how many collections changed (for erasure)."""
        gone = {user_id, *also}
        changed = 0
        for current in self.store.list():
            kept = replace(
                current,
                readable_users=_minus(current.readable_users, gone),
                writable_users=_minus(current.writable_users, gone),
            )
            if kept != current:
                self._replace(kept, "revoke", actor)
                changed += 1
        return changed

    def user_ids(self, users: Iterable[str]) -> tuple[str, ...]:
        """The user ids of ``users`` (ids or usernames); NotFoundError naming an unknown one."""
        refs = check_users(users)
        if self._user_id_of is None:
            return refs
        ids = []
        for ref in refs:
            found = self._user_id_of(ref)
            if found is None:
                raise NotFoundError(f"no user {ref!r}: create the account first")
            ids.append(found)
        return tuple(dict.fromkeys(ids))

    def _known_ids(self, users: Iterable[str]) -> set[str]:
        """``users`` as given, plus the user ids of those that name an account (revoking
        also takes off values left behind by accounts that are gone)."""
        refs = set(check_users(users))
        if self._user_id_of is None:
            return refs
        return refs | {i for i in map(self._user_id_of, refs) if i is not None}

    def _replace(self, collection: Collection, action: str, actor: str | None) -> Collection:
        with self._audited(action, collection, actor):
            self.store.replace(collection)
        self._forget()
        return collection

    def _audited(
        self, action: str, collection: Collection, actor: str | None
    ) -> AbstractContextManager[None]:
        """One audit event per change of a collection, with its lists after the change,
        written before the change is made (see ``audited``)."""
        return audited(
            self.audit,
            "access_control",
            action=f"collection_{action}",
            resource=f"collection:{collection.name}",
            user_id=actor,
            details={
                "readable_roles": list(collection.readable_roles),
                "readable_users": list(collection.readable_users),
                "writable_roles": list(collection.writable_roles),
                "writable_users": list(collection.writable_users),
            },
        )

    def _forget(self) -> None:
        with self._lock:
            self._cached = None


def into_collection(
    sources: Iterable[Source | Failure],
    collection: str,
    committed: Callable[[str], Document | None],
) -> Iterator[Source | Failure]:
    """``sources`` placed in ``collection``; a source already committed in another
    collection fails instead of silently staying where it is."""
    for item in sources:
        if isinstance(item, tuple):
            yield item
            continue
        old = committed(item.source)
        if old is not None and old.collection != collection:
            yield (
                item.source,
                ConflictError(f"{_ELSEWHERE}{old.collection!r}: remove it first to move it"),
            )
            continue
        yield replace(item, collection=collection)


def _duplicate_of(reason: str) -> str | None:
    """The source named by the knowledge base's duplicate-content failure, if it is one."""
    prefix, suffix = "duplicate content of ", " (same sha256)"
    if reason.startswith(prefix) and reason.endswith(suffix):
        return reason[len(prefix) : -len(suffix)]
    return None


def check_name(name: str) -> str:
    """A valid collection name (letters, digits, ``_ . -``; at most 128 characters)."""
    if not COLLECTION_NAME.match(name):
        shown = name if len(name) <= 128 else f"{name[:40]}... ({len(name)} characters)"
        raise InvalidInputError(
            f"invalid collection name {shown!r}: use letters, digits, '_', '.' and '-' "
            "(at most 128 characters, starting with a letter or digit)"
        )
    return name


def check_roles(roles: Iterable[str]) -> tuple[str, ...]:
    """Role values, each one of the known roles."""
    known = {r.value for r in Role}
    out = tuple(dict.fromkeys(r.strip().lower() for r in roles if r.strip()))
    unknown = [r for r in out if r not in known]
    if unknown:
        raise InvalidInputError(f"unknown role(s) {unknown}: use one of {sorted(known)}")
    return out


def check_users(users: Iterable[str]) -> tuple[str, ...]:
    """User references (ids or usernames) without surrounding blanks, empty ones dropped."""
    return tuple(dict.fromkeys(u.strip() for u in users if u.strip()))


def _union(old: Sequence[str], new: Sequence[str]) -> tuple[str, ...]:
    return tuple(sorted({*old, *new}))


def _minus(old: Sequence[str], gone: set[str]) -> tuple[str, ...]:
    return tuple(sorted(v for v in old if v not in gone))


def _no_collection(name: str) -> str:
    return f"no collection named {name!r}"
