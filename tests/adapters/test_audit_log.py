"""The HMAC-chained audit file: every kind of tampering is named by its first bad line."""

from __future__ import annotations

import hashlib
import hmac
import json
import multiprocessing
import os
import random
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from xnai.adapters.audit import JsonlAuditLog
from xnai.adapters.audit.chain import GENESIS, canonical, ref_of
from xnai.adapters.audit.jsonl import Anchor
from xnai.adapters.memory import MemoryAnchorStore
from xnai.adapters.security.keyring import FernetKeyRing
from xnai.domain.audit import AUDIT_KEY_CONTEXT, AuditLog

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "keyring.json"
    FernetKeyRing.open(path, create=True)
    return path


@pytest.fixture
def log(tmp_path: Path, key_file: Path) -> JsonlAuditLog:
    return JsonlAuditLog(tmp_path / "audit", FernetKeyRing.open(key_file))


def event(i: int, *, user: str = "u1", when: datetime | None = None, **details: Any) -> dict:
    return {
        "timestamp": (when or T0 + timedelta(minutes=i)).isoformat(),
        "event_id": f"e{i}",
        "event_type": "query",
        "severity": "info",
        "source_ip": "10.0.0.7",
        "user_id": user,
        "resource": f"doc/{i}",
        "action": "read",
        "success": True,
        "details": {"chunk_ids": [f"c{i}"], **details},
        "compliance_flags": ["GDPR"],
    }


def fill(log: JsonlAuditLog, n: int, **kw: Any) -> None:
    for i in range(1, n + 1):
        log.append(event(i, **kw))


def lines(log: JsonlAuditLog) -> list[str]:
    return log.path.read_text(encoding="ascii").splitlines(keepends=True)


def write(log: JsonlAuditLog, content: list[str]) -> None:
    log.path.write_text("".join(content), encoding="ascii")


def edit(log: JsonlAuditLog, lineno: int, **changes: Any) -> None:
    content = lines(log)
    obj = json.loads(content[lineno - 1])
    obj.update(changes)
    content[lineno - 1] = json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n"
    write(log, content)


def test_appends_are_numbered_chained_and_verify(log: JsonlAuditLog) -> None:
    assert isinstance(log, AuditLog)
    assert [log.append(event(i)) for i in (1, 2, 3)] == [1, 2, 3]
    objs = [json.loads(line) for line in lines(log)]
    assert [o["seq"] for o in objs] == [1, 2, 3]
    assert objs[0]["prev"] == GENESIS
    assert [o["prev"] for o in objs[1:]] == [o["mac"] for o in objs[:-1]]
    assert set(objs[0]["refs"]) == {"user_id", "source_ip"}
    result = log.verify()
    assert result.ok and result.lines == 3 and (result.first_seq, result.last_seq) == (1, 3)
    assert result.describe() == "OK: 3 lines"


def test_files_are_owner_only(log: JsonlAuditLog) -> None:
    log.append(event(1))
    assert stat.S_IMODE(log.directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.anchor_path.stat().st_mode) == 0o600


def test_an_empty_log_verifies(log: JsonlAuditLog) -> None:
    assert log.verify().describe() == "OK: 0 lines"
    assert log.tail(5) == []


def test_a_modified_line_is_named(log: JsonlAuditLog) -> None:
    fill(log, 5)
    edit(log, 3, resource="doc/other")
    result = log.verify()
    assert not result.ok and result.bad_line == 3
    assert "MAC mismatch" in result.reason
    assert result.describe().startswith("line 3: ")


def test_a_swapped_personal_value_is_named(log: JsonlAuditLog) -> None:
    fill(log, 4)
    edit(log, 2, user_id="mallory")
    result = log.verify()
    assert (result.ok, result.bad_line) == (False, 2)
    assert "user_id does not match its reference" in result.reason


def test_a_deleted_line_is_named(log: JsonlAuditLog) -> None:
    fill(log, 5)
    content = lines(log)
    del content[2]
    write(log, content)
    result = log.verify()
    assert (result.ok, result.bad_line) == (False, 3)
    assert "expected seq 3, found 4" in result.reason


def test_a_deleted_first_line_is_named(log: JsonlAuditLog) -> None:
    fill(log, 3)
    write(log, lines(log)[1:])
    assert log.verify().bad_line == 1


def test_reordered_lines_are_named(log: JsonlAuditLog) -> None:
    fill(log, 5)
    content = lines(log)
    content[1], content[2] = content[2], content[1]
    write(log, content)
    result = log.verify()
    assert (result.ok, result.bad_line) == (False, 2)
    assert "expected seq 2, found 3" in result.reason


def test_a_truncated_log_is_named_by_the_first_missing_line(log: JsonlAuditLog) -> None:
    fill(log, 5)
    write(log, lines(log)[:3])
    result = log.verify()
    assert (result.ok, result.bad_line) == (False, 4)
    assert "anchor records seq 5" in result.reason and "2 line(s) cut off" in result.reason


def test_losing_only_the_last_line_is_truncation(log: JsonlAuditLog) -> None:
    fill(log, 3)
    write(log, lines(log)[:2])
    assert log.verify().bad_line == 3


def test_a_deleted_log_file_is_truncation(log: JsonlAuditLog) -> None:
    fill(log, 2)
    log.path.unlink()
    result = log.verify()
    assert (result.ok, result.bad_line) == (False, 1)


def test_a_crash_before_the_anchor_update_still_verifies(log: JsonlAuditLog) -> None:
    fill(log, 3)
    stale_anchor = log.anchor_path.read_bytes()
    log.append(event(4))
    log.anchor_path.write_bytes(stale_anchor)  # as if the process died after the fsync
    assert log.verify().describe() == "OK: 4 lines"
    log.append(event(5))  # the next append moves the anchor on
    assert log.verify().describe() == "OK: 5 lines"
    assert json.loads(log.anchor_path.read_bytes())["seq"] == 5


def test_a_crash_on_the_very_first_append_still_verifies(
    log: JsonlAuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = log._write_anchor_file
    writes = 0

    def write_then_die(anchor: Anchor) -> None:
        nonlocal writes
        writes += 1
        if writes > 1:  # the anchor after the first line: the process dies first
            raise OSError("killed")
        real_write(anchor)

    monkeypatch.setattr(log, "_write_anchor_file", write_then_die)
    monkeypatch.setattr(log, "_cut", lambda size: None)  # a dead process cuts nothing off
    with pytest.raises(OSError):
        log.append(event(1))
    monkeypatch.undo()
    assert json.loads(log.anchor_path.read_bytes())["seq"] == 0  # written before the line
    assert log.verify().ok
    log.append(event(2))
    assert log.verify().describe() == "OK: 2 lines"


def test_an_anchor_more_than_a_batch_behind_fails(log: JsonlAuditLog) -> None:
    one_by_one = JsonlAuditLog(log.directory, log._keys, max_batch=1)
    fill(one_by_one, 2)
    stale_anchor = log.anchor_path.read_bytes()
    one_by_one.append(event(3))
    one_by_one.append(event(4))
    log.anchor_path.write_bytes(stale_anchor)
    result = one_by_one.verify()
    assert (result.ok, result.bad_line) == (False, 4)
    # A crash after a batch of appends leaves the anchor up to one batch behind: accepted.
    assert log.verify().ok


def test_concurrent_appends_share_writes_and_stay_in_order(
    log: JsonlAuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    fsyncs = 0
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        nonlocal fsyncs
        fsyncs += 1
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    with ThreadPoolExecutor(max_workers=16) as pool:
        seqs = list(pool.map(lambda i: log.append(event(i)), range(400)))
    monkeypatch.undo()
    assert sorted(seqs) == list(range(1, 401))
    assert log.verify().describe() == "OK: 400 lines"
    # each batch costs one fsync of the log and one of the anchor file
    assert fsyncs < 2 * 400


def test_a_torn_last_line_is_ignored_then_cut_by_the_next_append(log: JsonlAuditLog) -> None:
    fill(log, 2)
    with log.path.open("ab") as fh:
        fh.write(b'{"seq":3,"half a li')
    assert log.verify().describe() == "OK: 2 lines"
    assert [o["seq"] for o in log.tail(5)] == [1, 2]
    assert log.append(event(3)) == 3
    assert log.verify().describe() == "OK: 3 lines"
    assert len(lines(log)) == 3


def test_a_modified_anchor_is_reported(log: JsonlAuditLog) -> None:
    fill(log, 2)
    anchor = json.loads(log.anchor_path.read_bytes())
    anchor["seq"] = 1
    log.anchor_path.write_text(json.dumps(anchor), encoding="utf-8")
    result = log.verify()
    assert not result.ok and result.bad_line is None
    assert result.describe() == "anchor: the anchor file was modified or its key is unknown"


def test_injected_newlines_and_json_stay_inside_one_line(log: JsonlAuditLog) -> None:
    forged = 'x"}\n{"event_type":"forged","seq":2}\r\n\u2028'
    log.append(event(1, username=forged))
    log.append(event(2))
    content = lines(log)
    assert len(content) == 2
    assert json.loads(content[0])["details"]["username"] == forged
    assert all(line.isascii() for line in content)
    assert log.verify().ok


def test_a_hand_made_line_is_flagged(log: JsonlAuditLog) -> None:
    fill(log, 2)
    last = json.loads(lines(log)[-1])
    forged = {**event(3, user="admin"), "seq": 3, "prev": last["mac"], "key_id": last["key_id"]}
    forged |= {"refs": {}, "mac": "0" * 64}
    write(log, [*lines(log), json.dumps(forged) + "\n"])
    result = log.verify()
    assert (result.ok, result.bad_line) == (False, 3)


def test_a_line_that_is_not_json_is_flagged(log: JsonlAuditLog) -> None:
    fill(log, 3)
    content = lines(log)
    content.insert(1, "not json\n")
    write(log, content)
    result = log.verify()
    assert (result.bad_line, result.reason) == (2, "not a JSON object")


def test_lines_of_a_rotated_and_retired_key_still_verify(tmp_path: Path, key_file: Path) -> None:
    keys = FernetKeyRing.open(key_file)
    log = JsonlAuditLog(tmp_path / "audit", keys)
    log.append(event(1))
    old_id = keys.current_key_id
    keys.add_key()
    log.append(event(2))
    keys.retire_previous()
    log.append(event(3))
    ids = [json.loads(line)["key_id"] for line in lines(log)]
    assert ids[0] == old_id and ids[1] == ids[2] != old_id
    assert log.verify().describe() == "OK: 3 lines"
    # A fresh process reading the key file verifies too.
    assert JsonlAuditLog(tmp_path / "audit", FernetKeyRing.open(key_file)).verify().ok


def test_a_log_under_an_unknown_key_fails(tmp_path: Path, log: JsonlAuditLog) -> None:
    fill(log, 2)
    stranger = FernetKeyRing.open(tmp_path / "other" / "keyring.json", create=True)
    result = JsonlAuditLog(log.directory, stranger).verify()
    assert not result.ok and "key" in result.reason


def test_pseudonymise_erases_one_person_and_the_chain_still_verifies(
    log: JsonlAuditLog,
) -> None:
    log.append(event(1, user="u1", username="alice"))
    log.append(event(2, user="u2", username="bob"))
    log.append(
        {**event(3, user="u2"), "source_ip": "10.9.9.9"} | {"details": {"target_user": "u1"}}
    )
    log.append(event(4, user="u1"))
    assert log.pseudonymise("u1", also=["alice"]) == 3
    text = log.path.read_text(encoding="ascii")
    assert "u1" not in text and "alice" not in text and "10.0.0.7" not in text.split("\n")[0]
    objs = [json.loads(line) for line in lines(log)]
    assert objs[0]["user_id"].startswith("erased:") and objs[0]["user_id"] == objs[3]["user_id"]
    assert objs[0]["source_ip"].startswith("erased:")
    assert objs[0]["details"]["username"].startswith("erased:")
    assert (objs[1]["user_id"], objs[1]["details"]["username"]) == ("u2", "bob")
    assert (objs[2]["user_id"], objs[2]["source_ip"]) == ("u2", "10.9.9.9")
    assert objs[2]["details"]["target_user"].startswith("erased:")
    assert log.verify().describe() == "OK: 4 lines"
    assert log.pseudonymise("u1", also=["alice"]) == 0
    log.append(event(5))
    assert log.verify().ok


def test_a_pseudonym_cannot_be_swapped_for_another_identity(log: JsonlAuditLog) -> None:
    log.append(event(1, user="u1"))
    log.append(event(2, user="u2"))
    log.pseudonymise("u1")
    edit(log, 1, user_id="u2")
    assert log.verify().bad_line == 1
    edit(log, 1, user_id="erased:0000000000000000")
    assert log.verify().bad_line == 1


def test_trim_drops_old_lines_and_the_rest_verifies(log: JsonlAuditLog) -> None:
    for i in range(1, 6):
        log.append(event(i, when=T0 + timedelta(days=i)))
    assert log.trim(T0 + timedelta(days=3, hours=12)) == 3
    assert [json.loads(line)["seq"] for line in lines(log)] == [4, 5]
    assert log.verify().describe() == "OK: 2 lines"
    log.append(event(6, when=T0 + timedelta(days=6)))
    assert log.verify().describe() == "OK: 3 lines"
    write(log, lines(log)[1:])  # a line removed by hand is still caught
    result = log.verify()
    assert (result.ok, result.bad_line) == (False, 1)
    assert "expected seq 4, found 5" in result.reason


def test_trim_of_every_line_leaves_a_verifiable_chain(log: JsonlAuditLog) -> None:
    fill(log, 3)
    assert log.trim(T0 + timedelta(days=1)) == 3
    assert lines(log) == []
    assert log.verify().describe() == "OK: 0 lines"
    assert log.append(event(9, when=T0 + timedelta(days=2))) == 4
    assert log.verify().describe() == "OK: 1 lines"


def test_trim_never_removes_a_tampered_line(log: JsonlAuditLog) -> None:
    fill(log, 4)
    edit(log, 2, action="nothing to see")
    assert log.trim(T0 + timedelta(days=1)) == 1
    result = log.verify()
    assert (result.ok, result.bad_line) == (False, 1)
    assert "MAC mismatch" in result.reason


def test_a_crash_between_anchor_and_rewrite_of_a_trim_verifies(log: JsonlAuditLog) -> None:
    fill(log, 4)
    before = lines(log)
    assert log.trim(T0 + timedelta(minutes=2, seconds=30)) == 2
    write(log, before)  # the new base was anchored, the file not yet rewritten
    assert log.verify().describe() == "OK: 2 lines"
    assert log.trim(T0) == 2  # the leftovers go with the next trim
    assert [json.loads(line)["seq"] for line in lines(log)] == [3, 4]
    assert log.verify().ok


def test_tail_returns_the_last_lines_in_order(log: JsonlAuditLog) -> None:
    fill(log, 5)
    assert [o["seq"] for o in log.tail(2)] == [4, 5]
    assert [o["seq"] for o in log.tail(50)] == [1, 2, 3, 4, 5]
    assert [o["seq"] for o in log.lines()] == [1, 2, 3, 4, 5]


def test_threads_sharing_one_log_never_break_the_chain(log: JsonlAuditLog) -> None:
    def work(k: int) -> None:
        for i in range(15):
            log.append(event(100 * k + i))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert log.verify().describe() == "OK: 60 lines"


def _append_from_process(directory: str, key_file: str, k: int) -> None:
    log = JsonlAuditLog(Path(directory), FernetKeyRing.open(Path(key_file)))
    for i in range(15):
        log.append(event(100 * k + i))


def test_processes_appending_at_once_are_serialised(log: JsonlAuditLog, key_file: Path) -> None:
    log.append(event(0))
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_append_from_process, args=(str(log.directory), str(key_file), k))
        for k in range(3)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    log.append(event(1))  # this instance notices the others' lines
    assert log.verify().describe() == "OK: 47 lines"
    assert sorted(json.loads(line)["seq"] for line in lines(log)) == list(range(1, 48))


def test_names_in_a_list_are_erased_one_by_one(log: JsonlAuditLog) -> None:
    line = {**event(1, user="admin"), "details": {"readable_users": ["alice", "bob"]}}
    log.append(line)
    log.append(event(2))
    assert log.pseudonymise("u1", also=["alice"]) == 2
    readers = json.loads(lines(log)[0])["details"]["readable_users"]
    assert readers[0].startswith("erased:") and readers[1] == "bob"
    assert log.verify().ok
    edit(log, 1, details={"readable_users": [readers[0]]})  # dropping a name is caught
    assert log.verify().bad_line == 1


def test_no_single_byte_change_goes_unnoticed(log: JsonlAuditLog) -> None:
    log.append(event(1, username="al\u00efce\n"))
    log.append({**event(2), "details": {"readable_users": ["bob"], "n": 1.5}})
    log.append(event(3, user="u2"))
    original = log.path.read_bytes()
    parsed = [json.loads(line) for line in original.splitlines()]
    rng = random.Random(7)
    for pos in rng.sample(range(len(original)), 300):
        mutated = bytearray(original)
        mutated[pos] = rng.choice(b'0123456789abcdef{}[]":,\n xyzAE')
        log.path.write_bytes(bytes(mutated))
        result = log.verify()  # never raises on garbage
        if result.ok:  # only an equivalent spelling (such as \u00EF for \u00ef) may pass
            assert [json.loads(line) for line in bytes(mutated).splitlines()] == parsed


def test_a_resource_naming_the_person_keeps_its_kind(log: JsonlAuditLog) -> None:
    log.append({**event(1, user="admin"), "resource": "user:alice"})
    log.append({**event(2, user="admin"), "resource": "user/u1"})
    log.append({**event(3, user="admin"), "resource": "user:bob"})
    assert log.pseudonymise("u1", also=["alice"]) == 2
    resources = [json.loads(line)["resource"] for line in lines(log)]
    assert resources[0].startswith("user:erased:") and resources[1].startswith("user/erased:")
    assert resources[2] == "user:bob"
    assert log.verify().ok
    edit(log, 3, resource="user:carol")
    assert log.verify().bad_line == 3


def test_deleted_anchor_fails_verification(log: JsonlAuditLog) -> None:
    fill(log, 5)
    write(log, lines(log)[:3])  # cut off the end, then remove the evidence
    log.anchor_path.unlink()
    result = log.verify()
    assert not result.ok and result.describe() == (
        "anchor: the anchor file is missing although the log holds lines"
    )
    log.append(event(6))  # the next append does not re-anchor a log without its anchor
    assert not log.verify().ok and not log.anchor_path.exists()


def test_the_anchor_file_exists_before_the_first_line(log: JsonlAuditLog) -> None:
    log.append(event(1))
    assert json.loads(log.anchor_path.read_bytes())["seq"] == 1
    assert log.verify().ok


@pytest.fixture
def mirrored(tmp_path: Path, key_file: Path) -> tuple[JsonlAuditLog, MemoryAnchorStore]:
    store = MemoryAnchorStore()
    return JsonlAuditLog(tmp_path / "audit", FernetKeyRing.open(key_file), anchors=store), store


def test_deleting_the_log_and_its_anchor_file_fails_against_the_database_copy(
    mirrored: tuple[JsonlAuditLog, MemoryAnchorStore],
) -> None:
    log, store = mirrored
    fill(log, 4)
    assert store.anchor is not None and store.anchor.seq == 4 and log.verify().ok
    log.path.unlink()
    log.anchor_path.unlink()
    result = log.verify()
    assert not result.ok and "database anchor records seq 4" in result.reason


def test_a_rolled_back_log_and_anchor_file_fail_against_the_database_copy(
    mirrored: tuple[JsonlAuditLog, MemoryAnchorStore],
) -> None:
    log, _ = mirrored
    fill(log, 2)
    old_log, old_anchor = log.path.read_bytes(), log.anchor_path.read_bytes()
    log.append(event(3, username="evidence"))
    log.path.write_bytes(old_log)  # both files as they were before line 3
    log.anchor_path.write_bytes(old_anchor)
    result = log.verify()
    assert not result.ok and "rolled back" in result.reason


def test_a_deleted_database_copy_fails_verification(
    mirrored: tuple[JsonlAuditLog, MemoryAnchorStore],
) -> None:
    log, store = mirrored
    fill(log, 2)
    store.anchor = None
    result = log.verify()
    assert not result.ok and "database copy of the anchor is missing" in result.reason


def test_an_anchor_file_of_an_older_version_still_verifies_and_gets_a_copy(
    log: JsonlAuditLog, tmp_path: Path, key_file: Path
) -> None:
    fill(log, 2)  # written without an anchor store: the anchor file has no "mirrored"
    assert "mirrored" not in json.loads(log.anchor_path.read_bytes())
    store = MemoryAnchorStore()
    upgraded = JsonlAuditLog(log.directory, FernetKeyRing.open(key_file), anchors=store)
    assert upgraded.verify().ok and store.anchor is None
    upgraded.append(event(3))
    assert store.anchor is not None and store.anchor.seq == 3
    assert upgraded.verify().describe() == "OK: 3 lines"


def test_erasure_marker_cannot_replace_other_fields(log: JsonlAuditLog) -> None:
    log.append(event(1, user="u1", username="alice"))
    log.append(event(2, user="u2", username="bob"))  # same source_ip as alice
    log.pseudonymise("u1", also=["alice"])
    assert log.verify().ok
    erased = json.loads(lines(log)[0])
    pristine = lines(log)
    for field in ("user_id", "source_ip", "details.username"):
        bob = json.loads(pristine[1])
        ref = bob["refs"][field]
        name = field.rpartition(".")[2]
        holder = bob["details"] if field.startswith("details.") else bob
        source = erased["details"] if field.startswith("details.") else erased
        forgeries = [
            "erased:" + ref[:16],  # the marker derived from the line's own reference
            source[name],  # alice's pseudonym (for source_ip: the same address's)
        ]
        for forged in forgeries:
            for tags in ({}, {field: erased["erasures"][field]}):
                write(log, pristine)
                holder[name] = forged
                bob["erasures"] = tags
                content = list(pristine)
                content[1] = canonical(bob).decode("ascii") + "\n"
                write(log, content)
                result = log.verify()
                assert (result.ok, result.bad_line) == (False, 2), (field, forged, tags)
    write(log, pristine)
    assert log.verify().ok


def _format_1_line(key_id: str, key: bytes, seq: int, prev: str, **values: Any) -> dict:
    """A line as the first line format sealed it: refs are keyed hashes of the values."""
    line = {**event(seq, **values), "seq": seq, "prev": prev, "key_id": key_id}
    line["details"] = dict(line["details"])
    paths = {"user_id": line["user_id"], "source_ip": line["source_ip"]}
    if "username" in line["details"]:
        paths["details.username"] = line["details"]["username"]
    line["refs"] = {path: ref_of(key, value) for path, value in paths.items()}
    view = json.loads(json.dumps(line))
    view["user_id"] = view["source_ip"] = None
    if "username" in view["details"]:
        view["details"]["username"] = None
    line["mac"] = hmac.new(key, b"line\x00" + canonical(view), hashlib.sha256).hexdigest()
    return line


def test_lines_of_the_first_format_still_verify_and_can_be_erased(log: JsonlAuditLog) -> None:
    key_id, key = log._keys.mac_key(AUDIT_KEY_CONTEXT)
    first = _format_1_line(key_id, key, 1, GENESIS, user="u1", username="alice")
    second = _format_1_line(key_id, key, 2, first["mac"], user="u2", ingested_by="u1")
    log.directory.mkdir(mode=0o700)
    write(log, [canonical(first).decode() + "\n", canonical(second).decode() + "\n"])
    log._write_anchor(Anchor(2, second["mac"]))
    assert log.verify().describe() == "OK: 2 lines"
    assert log.pseudonymise("u1", also=["alice"]) == 1
    assert log.verify().ok
    log.append(event(3, user="u1", ingested_by="u1"))  # new lines use the new format
    assert json.loads(lines(log)[2])["v"] == 2
    assert log.pseudonymise("u1") == 1
    assert log.verify().describe() == "OK: 3 lines"
