"""Sealing and checking one audit line: canonical JSON, personal-value refs, chained HMAC."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from xnai.domain.audit import (
    ERASED_PREFIX,
    PERSONAL_DETAIL_KEYS,
    PERSONAL_FIELDS,
    USER_RESOURCE_PREFIXES,
)

GENESIS = "0" * 64
CHAIN_FIELDS = frozenset({"seq", "prev", "key_id", "refs", "mac"})
PSEUDONYM_CHARS = 16
REF_CHARS = 32

KeyLookup = Callable[[str], bytes | None]


def canonical(obj: Any) -> bytes:
    """Sorted keys, no spaces, ASCII only: control characters and newlines are escaped."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def ref_of(key: bytes, value: str) -> str:
    """The keyed hash that stands for a personal value inside the MAC."""
    return hmac.new(key, b"ref\x00" + value.encode("utf-8"), hashlib.sha256).hexdigest()[:REF_CHARS]


def pseudonym(ref: str) -> str:
    """What an erased personal value becomes: stable per person, not reversible."""
    return ERASED_PREFIX + ref[:PSEUDONYM_CHARS]


def personal_paths(line: Mapping[str, Any]) -> Iterator[str]:
    """Paths of the personal values a line holds: ``user_id``, ``details.username``,
    ``details.readable_users.0`` for each item of a list, and a ``resource`` naming a user."""
    for name in PERSONAL_FIELDS:
        if line.get(name) is not None:
            yield name
    resource = line.get("resource")
    if isinstance(resource, str) and resource.startswith(USER_RESOURCE_PREFIXES):
        yield "resource"
    details = line.get("details")
    if isinstance(details, Mapping):
        for name in sorted(PERSONAL_DETAIL_KEYS):
            value = details.get(name)
            if isinstance(value, list):
                yield from (f"details.{name}.{i}" for i, v in enumerate(value) if v is not None)
            elif value is not None:
                yield f"details.{name}"


def get_path(line: Mapping[str, Any], path: str) -> Any:
    """The value at a personal path; None when absent."""
    value: Any = line
    for part in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def set_path(line: dict[str, Any], path: str, value: Any) -> None:
    """Set the value at a personal path; containers on the way are copied, never shared."""
    head, _, rest = path.partition(".")
    if not rest:
        line[head] = value
        return
    name, _, index = rest.partition(".")
    details = dict(line[head])
    if index:
        items = list(details[name])
        items[int(index)] = value
        details[name] = items
    else:
        details[name] = value
    line[head] = details


def _mac(key: bytes, line: Mapping[str, Any]) -> str:
    view = {k: v for k, v in line.items() if k != "mac"}
    refs = view.get("refs")
    if isinstance(refs, Mapping):
        for path in refs:
            set_path(view, path, None)  # the ref stands in for the value
    return hmac.new(key, b"line\x00" + canonical(view), hashlib.sha256).hexdigest()


def seal(
    event: Mapping[str, Any], *, seq: int, prev: str, key_id: str, key: bytes
) -> dict[str, Any]:
    """The stored line of ``event``: chain fields, refs of personal values, and the MAC."""
    line = {k: v for k, v in event.items() if k not in CHAIN_FIELDS}
    if isinstance(line.get("details"), Mapping):
        line["details"] = dict(line["details"])
    refs: dict[str, str] = {}
    for path in list(personal_paths(line)):
        value = str(get_path(line, path))
        set_path(line, path, value)
        refs[path] = ref_of(key, value)
    line.update(seq=seq, prev=prev, key_id=key_id, refs=refs)
    line["mac"] = _mac(key, line)
    return line


def check(line: Mapping[str, Any], keys: KeyLookup) -> str | None:
    """Why a parsed line is not intact (MAC, refs), or None when it is."""
    key_id, refs = line.get("key_id"), line.get("refs")
    if not isinstance(key_id, str) or not isinstance(refs, Mapping):
        return "missing chain fields (not written by the audit log)"
    key = keys(key_id)
    if key is None:
        return f"unknown audit key id {key_id!r}"
    if set(refs) != set(personal_paths(line)):
        return "personal values and their references disagree: the line was modified"
    mac = line.get("mac")
    if not isinstance(mac, str) or not hmac.compare_digest(_mac(key, line), mac):
        return "MAC mismatch: the line was modified"
    for path, ref in refs.items():
        value = get_path(line, path)
        if not isinstance(value, str):
            return f"{path} is not a string: the line was modified"
        prefix, _ = _split(path, value)
        if value == prefix + pseudonym(str(ref)):
            continue
        if not hmac.compare_digest(ref_of(key, value), str(ref)):
            return f"{path} does not match its reference: the line was modified"
    return None


def erase(line: Mapping[str, Any], user_id: str, values: frozenset[str]) -> dict[str, Any] | None:
    """``line`` with the person's values replaced by pseudonyms, or None when untouched.

    The person is ``user_id`` (also known by ``values``). A line whose actor is the person
    loses its ``user_id`` and ``source_ip``; any personal detail equal to one of the values,
    and a ``resource`` such as ``user:alice`` naming one, goes too (keeping ``user:``).
    The MAC covers refs, not values, so the line still verifies.
    """
    refs = line.get("refs")
    if not isinstance(refs, Mapping):
        return None
    actor = line.get("user_id")
    actor_is_person = isinstance(actor, str) and actor in values
    changed = dict(line)
    for path, ref in refs.items():
        value = get_path(line, path)
        if not isinstance(value, str):
            continue
        prefix, name = _split(path, value)
        if name.startswith(ERASED_PREFIX):
            continue
        if (path == "source_ip" and actor_is_person) or name in values:
            set_path(changed, path, prefix + pseudonym(str(ref)))
    return changed if changed != line else None


def _split(path: str, value: str) -> tuple[str, str]:
    """(``user:``, ``alice``) for a resource naming a user; (``""``, value) otherwise."""
    if path == "resource":
        for prefix in USER_RESOURCE_PREFIXES:
            if value.startswith(prefix):
                return prefix, value[len(prefix) :]
    return "", value
