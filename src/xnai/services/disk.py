"""A full disk as the domain's ``StorageFullError``: one clear refusal (HTTP 507, a CLI
``error:`` line) instead of a traceback, whatever layer ran out of space."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager

from xnai.domain.errors import StorageFullError

# No space left on the device, or the user's disk quota is used up.
FULL = frozenset({errno.ENOSPC, errno.EDQUOT})

ADVICE = "free disk space (or raise the quota) and try again"


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc``, or an error it was raised from, says the disk or quota is full."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, StorageFullError):
            return True
        if isinstance(exc, OSError) and exc.errno in FULL:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def storage_full(what: str) -> StorageFullError:
    """The error that says ``what`` was not done because the disk is full."""
    return StorageFullError(f"the disk is full: {what}; {ADVICE}")


@contextmanager
def refused_when_full(what: str) -> Iterator[None]:
    """Turn a full disk met in the block into ``storage_full(what)``; other errors pass."""
    try:
        yield
    except StorageFullError:
        raise
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        raise storage_full(what) from exc
