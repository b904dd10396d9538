"""Collections, access scopes and row filters: who may read which documents."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

from xnai.domain.rbac import Principal, Role

DEFAULT_COLLECTION = "default"
COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Collection:
    """A named set of documents and the roles and users that may read or write it.

    Users are listed by user id (a name is never enough: an erased person's name may be
    taken again); roles by their value (``viewer`` ...). Admins read and write every
    collection whatever the lists say.
    """

    name: str
    description: str = ""
    readable_roles: tuple[str, ...] = ()
    readable_users: tuple[str, ...] = ()
    writable_roles: tuple[str, ...] = ()
    writable_users: tuple[str, ...] = ()

    def readable_by(self, principal: Principal) -> bool:
        """Whether ``principal`` may read the documents of this collection."""
        return principal.is_admin or _listed(principal, self.readable_roles, self.readable_users)

    def writable_by(self, principal: Principal) -> bool:
        """Whether ``principal`` may add documents to or remove them from this collection."""
        return principal.is_admin or _listed(principal, self.writable_roles, self.writable_users)


def _listed(principal: Principal, roles: Sequence[str], users: Sequence[str]) -> bool:
    return principal.role.value in roles or principal.user_id in users


def default_collection() -> Collection:
    """The collection every document without one belongs to: every role reads it, editors
    write it (until an admin changes that)."""
    return Collection(
        DEFAULT_COLLECTION,
        "Documents ingested without a collection",
        readable_roles=tuple(sorted(r.value for r in Role)),
        writable_roles=(Role.EDITOR.value,),
    )


@dataclass(frozen=True, slots=True)
class AccessScope:
    """The collections a reader may see: ``collections is None`` means every collection.

    ``user_id`` names the reader for the audit trail; it plays no part in filtering.
    """

    collections: frozenset[str] | None
    user_id: str | None = None

    @classmethod
    def everything(cls, user_id: str | None = None) -> AccessScope:
        """The unrestricted scope (admins, the local command line)."""
        return cls(None, user_id)

    @classmethod
    def only(cls, collections: Sequence[str], user_id: str | None = None) -> AccessScope:
        """A scope of exactly these collections."""
        return cls(frozenset(collections), user_id)

    @property
    def unrestricted(self) -> bool:
        """True when every collection is readable."""
        return self.collections is None

    def allows(self, collection: str) -> bool:
        """Whether documents of ``collection`` are visible."""
        return self.collections is None or collection in self.collections

    @property
    def key(self) -> str:
        """A short stable key of the readable collections, for caches keyed by scope."""
        if self.collections is None:
            return "all"
        joined = "\x00".join(sorted(self.collections))
        return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:32]


class RowFilter:
    """The rows of one index a search may return: a boolean mask over the index's ``ids()``.

    ``mask`` is a read-only buffer of one bool per row, so an adapter views it as an array
    without a copy. An index rejects a filter whose length differs from its own. A filter is
    built once per (index generation, scope) and reused, so adapters keep what they derive
    from it (a FAISS selector, say) in ``memo`` instead of rebuilding it on every query.
    """

    __slots__ = ("_lock", "_memo", "count", "mask")

    def __init__(self, mask: Iterable[object]) -> None:
        data = _bool_bytes(mask)
        self.mask = memoryview(data).cast("?")
        self.count = data.count(1)
        self._memo: dict[str, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def of(cls, ids: Sequence[str], allowed: Container[str]) -> RowFilter:
        """The filter of an index whose rows hold ``ids``, letting through ``allowed`` ids."""
        return cls(memoryview(bytes(i in allowed for i in ids)).cast("?"))

    def __len__(self) -> int:
        return len(self.mask)

    def check(self, rows: int) -> None:
        """ValueError unless the filter was built for an index of ``rows`` rows."""
        if len(self) != rows:
            raise ValueError(
                f"the row filter covers {len(self)} rows but the index has {rows}: "
                "build it from this index's ids()"
            )

    def memo(self, key: str, build: Callable[[], T]) -> T:
        """The value ``build()`` made the first time ``key`` was asked for."""
        with self._lock:
            if key not in self._memo:
                self._memo[key] = build()
            value: T = self._memo[key]
            return value


@runtime_checkable
class CollectionStore(Protocol):
    """Where collections and their access lists are kept."""

    def list(self) -> list[Collection]:
        """Every collection, by name."""
        ...

    def get(self, name: str) -> Collection | None:
        """A collection by name."""
        ...

    def create(self, collection: Collection) -> None:
        """Add a collection; ConflictError when the name is taken."""
        ...

    def replace(self, collection: Collection) -> None:
        """Overwrite a collection's description and lists; NotFoundError when unknown."""
        ...

    def delete(self, name: str) -> bool:
        """Remove a collection; False when there was none."""
        ...


def _bool_bytes(mask: Iterable[object]) -> bytes:
    """One byte per row, 1 where ``mask`` is true; a buffer of bools (a numpy bool array)
    is copied as it is, without a loop in Python."""
    try:
        view = memoryview(mask)  # type: ignore[arg-type]
    except TypeError:
        return bytes(map(bool, mask))
    if view.format == "?":
        return view.tobytes()
    return bytes(map(bool, mask))
