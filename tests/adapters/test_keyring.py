"""FernetKeyRing: the key file, per-context keys, tamper detection, MAC keys and rotation."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from xnai.adapters.security.keyring import FernetKeyRing, looks_encrypted
from xnai.domain.errors import ConfigError, IntegrityError
from xnai.domain.keys import CONTEXTS, KeyState, RotatableKeyRing
from xnai.domain.ports import KeyRing

SECRET = b"the turbine manual, page 7: torque 42 Nm"


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "master.key"


@pytest.fixture
def ring(key_file: Path) -> FernetKeyRing:
    return FernetKeyRing.open(key_file, create=True)


def flip(token: bytes, at: int) -> bytes:
    """``token`` with one bit of its raw byte ``at`` flipped (negative: from the end)."""
    raw = bytearray(base64.urlsafe_b64decode(token))
    raw[at] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw))


def stored(key_file: Path) -> dict[str, list[dict[str, str]]]:
    return json.loads(key_file.read_text())


def test_satisfies_the_ports(ring: FernetKeyRing) -> None:
    assert isinstance(ring, KeyRing) and isinstance(ring, RotatableKeyRing)


def test_key_file_is_owner_only_in_an_owner_only_directory(
    ring: FernetKeyRing, key_file: Path
) -> None:
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert key_file.parent.stat().st_mode & 0o777 == 0o700
    (entry,) = stored(key_file)["keys"]
    assert set(entry) == {"id", "created_at", "key"}
    assert entry["id"] == ring.current_key_id
    assert len(base64.urlsafe_b64decode(entry["key"])) == 32
    assert ring.created_at is not None and ring.created_at.isoformat() == entry["created_at"]


def test_open_never_replaces_an_existing_key_file(ring: FernetKeyRing, key_file: Path) -> None:
    token = ring.encrypt("user_data", SECRET)
    again = FernetKeyRing.open(key_file, create=True)
    assert again.current_key_id == ring.current_key_id
    assert again.decrypt("user_data", token) == SECRET


def test_a_missing_key_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        FernetKeyRing.open(tmp_path / "nope.key")


@pytest.mark.parametrize("context", CONTEXTS)
def test_round_trip_in_every_context(ring: FernetKeyRing, context: str) -> None:
    token = ring.encrypt(context, SECRET)
    assert SECRET not in token and looks_encrypted(token)
    assert ring.decrypt(context, token) == SECRET


def test_contexts_have_separate_keys(ring: FernetKeyRing) -> None:
    token = ring.encrypt("user_data", SECRET)
    for other in set(CONTEXTS) - {"user_data"}:
        with pytest.raises(IntegrityError):
            ring.decrypt(other, token)


def test_unknown_context_is_refused(ring: FernetKeyRing) -> None:
    with pytest.raises(ValueError, match="unknown key context"):
        ring.encrypt("passwords", SECRET)


@pytest.mark.parametrize("at", [0, 4, 12, 30, 50, -20, -1])
def test_a_flipped_byte_is_an_integrity_error_never_other_plaintext(
    ring: FernetKeyRing, at: int
) -> None:
    token = ring.encrypt("user_data", SECRET)
    with pytest.raises(IntegrityError, match="integrity check"):
        ring.decrypt("user_data", flip(token, at))


def test_truncated_and_foreign_tokens_are_integrity_errors(ring: FernetKeyRing) -> None:
    token = ring.encrypt("user_data", SECRET)
    stranger = FernetKeyRing.from_keys([FernetKeyRing.generate_key()])
    for bad in (token[:-10], b"plain text", b"", stranger.encrypt("user_data", SECRET)):
        with pytest.raises(IntegrityError):
            ring.decrypt("user_data", bad)


def test_mac_keys_are_per_context_stable_and_not_the_data_key(
    ring: FernetKeyRing, key_file: Path
) -> None:
    key_id, audit_key = ring.mac_key("audit_logs")
    assert key_id == ring.current_key_id and len(audit_key) == 32
    assert ring.mac_key("system_config")[1] != audit_key
    assert FernetKeyRing.open(key_file).mac_key("audit_logs") == (key_id, audit_key)
    assert ring.mac_key_by_id("audit_logs", key_id) == audit_key
    assert ring.mac_key_by_id("audit_logs", "unknown") is None
    master = base64.urlsafe_b64decode(stored(key_file)["keys"][0]["key"])
    assert audit_key != master


def test_added_key_encrypts_and_old_data_stays_readable(
    ring: FernetKeyRing, key_file: Path
) -> None:
    old_id = ring.current_key_id
    old_token = ring.encrypt("user_data", SECRET)
    new = ring.add_key()
    assert new.state is KeyState.CURRENT and ring.current_key_id == new.key_id != old_id
    assert [k["id"] for k in stored(key_file)["keys"]] == [new.key_id, old_id]  # newest first
    assert [(k.key_id, k.state) for k in ring.list_keys()] == [
        (new.key_id, KeyState.CURRENT),
        (old_id, KeyState.PREVIOUS),
    ]
    assert ring.decrypt("user_data", old_token) == SECRET
    old_only = FernetKeyRing.from_keys([stored(key_file)["keys"][1]["key"]])
    with pytest.raises(IntegrityError):
        old_only.decrypt("user_data", ring.encrypt("user_data", SECRET))


def test_retired_key_leaves_only_its_audit_mac_key(ring: FernetKeyRing, key_file: Path) -> None:
    old_id, old_audit_mac = ring.mac_key("audit_logs")
    old_material = stored(key_file)["keys"][0]["key"]
    old_token = ring.encrypt("user_data", SECRET)
    ring.add_key()
    assert ring.retire_previous() == [old_id]
    assert old_material not in key_file.read_text()
    assert key_file.stat().st_mode & 0o777 == 0o600
    with pytest.raises(IntegrityError):
        ring.decrypt("user_data", old_token)
    assert ring.mac_key_by_id("audit_logs", old_id) == old_audit_mac
    assert ring.mac_key_by_id("system_config", old_id) is None
    states = {k.key_id: k.state for k in ring.list_keys()}
    assert states[old_id] is KeyState.RETIRED
    reopened = FernetKeyRing.open(key_file)
    assert reopened.mac_key_by_id("audit_logs", old_id) == old_audit_mac
    retired = next(k for k in reopened.list_keys() if k.key_id == old_id)
    assert retired.retired_at is not None and retired.created_at is not None


def test_another_process_follows_a_rotation(ring: FernetKeyRing, key_file: Path) -> None:
    server = FernetKeyRing.open(key_file)  # e.g. `xnai serve` while `xnai keys rotate` runs
    ring.add_key()
    ring.retire_previous()
    assert server.decrypt("user_data", ring.encrypt("user_data", SECRET)) == SECRET
    assert ring.decrypt("user_data", server.encrypt("user_data", SECRET)) == SECRET
    assert server.current_key_id == ring.current_key_id


def test_disabled_passes_data_through_but_reads_tokens_and_still_has_mac_keys(
    key_file: Path,
) -> None:
    enabled = FernetKeyRing.open(key_file, create=True)
    token = enabled.encrypt("user_data", SECRET)
    ring = FernetKeyRing.open(key_file, enabled=False)
    assert ring.encrypt("user_data", SECRET) == SECRET
    assert ring.decrypt("user_data", SECRET) == SECRET
    assert ring.decrypt("user_data", token) == SECRET  # written while it was on
    with pytest.raises(IntegrityError):
        ring.decrypt("user_data", flip(token, 40))
    assert ring.mac_key("audit_logs") == enabled.mac_key("audit_logs")


def test_keys_from_the_environment_newest_first() -> None:
    old, new = FernetKeyRing.generate_key(), FernetKeyRing.generate_key()
    token = FernetKeyRing.from_keys([old]).encrypt("user_data", SECRET)
    ring = FernetKeyRing.from_keys([new, old])
    assert ring.decrypt("user_data", token) == SECRET
    assert ring.created_at is None and ring.source == "environment"
    assert [k.state for k in ring.list_keys()] == [KeyState.CURRENT, KeyState.PREVIOUS]
    assert FernetKeyRing.from_keys([new]).decrypt("user_data", ring.encrypt("user_data", SECRET))
    with pytest.raises(ConfigError, match="NEW,OLD"):
        ring.add_key()
    assert ring.retire_previous() == []


@pytest.mark.parametrize("bad", ["short", "!" * 44, base64.urlsafe_b64encode(b"x" * 16).decode()])
def test_a_malformed_master_key_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError, match="32 random bytes"):
        FernetKeyRing.from_keys([bad])


def test_a_key_file_whose_id_does_not_match_its_key_is_refused(
    ring: FernetKeyRing, key_file: Path
) -> None:
    doc = stored(key_file)
    doc["keys"][0]["id"] = "0123456789ab"
    key_file.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="malformed"):
        FernetKeyRing.open(key_file)
    key_file.write_text("{not json")
    with pytest.raises(ConfigError, match="not readable"):
        FernetKeyRing.open(key_file)


def test_concurrent_creation_keeps_one_key(key_file: Path) -> None:
    first = FernetKeyRing.open(key_file, create=True)
    os.utime(key_file, ns=(1, 1))  # an old file: creation must not rewrite it
    second = FernetKeyRing.open(key_file, create=True)
    assert first.current_key_id == second.current_key_id
    assert key_file.stat().st_mtime_ns == 1
    assert not [p for p in key_file.parent.iterdir() if p.name != key_file.name]


def test_a_sealer_encrypts_even_with_encryption_off_and_is_bound_to_its_label() -> None:
    key = FernetKeyRing.generate_key()
    off = FernetKeyRing.from_keys([key], enabled=False)
    sealed = off.sealer("system_config", b"a").seal(b"secret")
    assert b"secret" not in sealed and looks_encrypted(sealed)
    same = FernetKeyRing.from_keys([key]).sealer("system_config", b"a")
    assert same.open(sealed) == b"secret"  # the key comes from the master key, not the switch
    assert off.sealer("system_config", b"b").open(sealed) is None
    assert off.sealer("user_data", b"a").open(sealed) is None
    assert same.open(b"not a token") is None
