"""Sealing and checking one audit line: canonical JSON, personal-value refs, chained HMAC.

The MAC covers a reference (``refs``) to each personal value instead of the value, so erasure
can replace the value without breaking the chain. Format version 2 (``"v": 2``) makes the
reference a keyed commitment to the value's keyed pseudonym, and each erased value has a tag
in ``erasures`` binding the erasure to its line and field: only the holder of the audit key
can erase, and only a value's own pseudonym verifies. Lines without ``v`` (version 1) still
verify as before.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from xnai.domain.audit import (
    ERASED_PREFIX,
    PERSONAL_DETAIL_KEYS,
    PERSONAL_DETAIL_KEYS_V1,
    PERSONAL_FIELDS,
    USER_RESOURCE_PREFIXES,
)

GENESIS = "0" * 64
LINE_VERSION = 2
ERASURES = "erasures"
CHAIN_FIELDS = frozenset({"v", "seq", "prev", "key_id", "refs", "mac", ERASURES})
PSEUDONYM_CHARS = 16  # version 1
REF_CHARS = 32
KEYED_PSEUDONYM_CHARS = 24  # version 2: 96 bits
TAG_CHARS = 16

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
    """What an erased personal value of a version 1 line becomes (derived from its ref)."""
    return ERASED_PREFIX + ref[:PSEUDONYM_CHARS]


def _hmac(key: bytes, label: bytes, *parts: str) -> str:
    data = label + b"\x00" + "\x00".join(parts).encode("utf-8")
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def keyed_pseudonym(key: bytes, name: str) -> str:
    """The stable, keyed pseudonym of a personal value (version 2): the same person gets
    the same one on every line sealed with the same key; nobody without the key can make it."""
    return ERASED_PREFIX + _hmac(key, b"pseudonym", name)[:KEYED_PSEUDONYM_CHARS]


def commitment(key: bytes, prefix: str, pseudonym_: str) -> str:
    """The version 2 ref: a keyed commitment to the value's pseudonym (and its prefix)."""
    return _hmac(key, b"commit", prefix + pseudonym_)[:REF_CHARS]


def erasure_tag(key: bytes, seq: object, path: str, pseudonym_: str) -> str:
    """Binds an erased value to its line and field: copying a pseudonym elsewhere fails."""
    return _hmac(key, b"erase", str(seq), path, pseudonym_)[:TAG_CHARS]


def personal_paths(line: Mapping[str, Any]) -> Iterator[str]:
    """Paths of the personal values a line holds: ``user_id``, ``details.username``,
    ``details.readable_users.0`` for each item of a list, and a ``resource`` naming a user.

    Which detail keys are personal depends on the line's format version."""
    keys = PERSONAL_DETAIL_KEYS if line.get("v") == LINE_VERSION else PERSONAL_DETAIL_KEYS_V1
    for name in PERSONAL_FIELDS:
        if line.get(name) is not None:
            yield name
    resource = line.get("resource")
    if isinstance(resource, str) and resource.startswith(USER_RESOURCE_PREFIXES):
        yield "resource"
    details = line.get("details")
    if isinstance(details, Mapping):
        for name in sorted(keys):
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
    # Erasure tags are added after sealing, like the pseudonyms they vouch for.
    unsealed = {"mac", ERASURES} if line.get("v") == LINE_VERSION else {"mac"}
    view = {k: v for k, v in line.items() if k not in unsealed}
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
    line["v"] = LINE_VERSION
    refs: dict[str, str] = {}
    for path in list(personal_paths(line)):
        value = str(get_path(line, path))
        set_path(line, path, value)
        prefix, name = _split(path, value)
        refs[path] = commitment(key, prefix, keyed_pseudonym(key, name))
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
    tags = line.get(ERASURES, {})
    if not isinstance(tags, Mapping) or not set(tags) <= set(refs):
        return "erasure tags name fields the line does not have: the line was modified"
    for path, ref in refs.items():
        value = get_path(line, path)
        if not isinstance(value, str):
            return f"{path} is not a string: the line was modified"
        if line.get("v") == LINE_VERSION:
            problem = _check_value(key, line.get("seq"), path, value, str(ref), tags.get(path))
        else:
            problem = _check_value_v1(key, path, value, str(ref))
        if problem:
            return problem
    return None


def _check_value(
    key: bytes, seq: object, path: str, value: str, ref: str, tag: object
) -> str | None:
    """A version 2 value: the original, or its own pseudonym with this line's erasure tag."""
    prefix, name = _split(path, value)
    if tag is not None:
        expected = erasure_tag(key, seq, path, name)
        if not isinstance(tag, str) or not hmac.compare_digest(expected, tag):
            return f"{path} holds an erasure this line never received: it was modified"
        pseudonym_ = name
    else:
        pseudonym_ = keyed_pseudonym(key, name)
    if not hmac.compare_digest(commitment(key, prefix, pseudonym_), ref):
        return f"{path} does not match its reference: the line was modified"
    return None


def _check_value_v1(key: bytes, path: str, value: str, ref: str) -> str | None:
    """A version 1 value: the original, or the pseudonym derived from its ref."""
    prefix, _ = _split(path, value)
    if value == prefix + pseudonym(ref):
        return None
    if not hmac.compare_digest(ref_of(key, value), ref):
        return f"{path} does not match its reference: the line was modified"
    return None


def erase(
    line: Mapping[str, Any], user_id: str, values: frozenset[str], keys: KeyLookup
) -> dict[str, Any] | None:
    """``line`` with the person's values replaced by pseudonyms, or None when untouched.

    The person is ``user_id`` (also known by ``values``). A line whose actor is the person
    loses its ``user_id`` and ``source_ip``; any personal detail equal to one of the values,
    and a ``resource`` such as ``user:alice`` naming one, goes too (keeping ``user:``).
    The MAC covers refs, not values, so the line still verifies. A version 2 line needs its
    key (``keys``); without it the line is left as it is.
    """
    refs = line.get("refs")
    if not isinstance(refs, Mapping):
        return None
    key = keys(str(line.get("key_id"))) if line.get("v") == LINE_VERSION else None
    if line.get("v") == LINE_VERSION and key is None:
        return None
    actor = line.get("user_id")
    actor_is_person = isinstance(actor, str) and actor in values
    changed = dict(line)
    tags = dict(line.get(ERASURES) or {})
    for path, ref in refs.items():
        value = get_path(line, path)
        if not isinstance(value, str):
            continue
        prefix, name = _split(path, value)
        if path in tags or (key is None and name.startswith(ERASED_PREFIX)):
            continue
        if (path == "source_ip" and actor_is_person) or name in values:
            if key is None:
                set_path(changed, path, prefix + pseudonym(str(ref)))
                continue
            erased = keyed_pseudonym(key, name)
            set_path(changed, path, prefix + erased)
            tags[path] = erasure_tag(key, line.get("seq"), path, erased)
    if tags:
        changed[ERASURES] = dict(sorted(tags.items()))
    return changed if changed != line else None


def _split(path: str, value: str) -> tuple[str, str]:
    """(``user:``, ``alice``) for a resource naming a user; (``""``, value) otherwise."""
    if path == "resource":
        for prefix in USER_RESOURCE_PREFIXES:
            if value.startswith(prefix):
                return prefix, value[len(prefix) :]
    return "", value
