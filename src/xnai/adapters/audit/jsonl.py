"""The audit log as one JSON Lines file chained by HMAC, with an anchor file beside it.

``audit.jsonl`` holds one sealed event per line (mode 0600, in a 0700 directory).
``audit.anchor.json`` records the last sequence number and MAC, and the chain base left by
retention trims; it is itself MAC'd, so cutting lines off the end of the log is detected.
The anchor file is written before the first line, so a log without one was tampered with.
With an ``AnchorStore`` (the database), a copy of the anchor is kept there too and the anchor
file says so: deleting or rolling back the files under the data directory is detected.
Writers of every process are serialised by an ``fcntl`` lock on ``audit.lock``. Appends
that arrive while another is being written are written together (group commit): one write,
one fsync and one anchor update for the whole batch, so concurrent requests do not queue
behind one fsync each. A crash can therefore leave the anchor behind by at most one batch
(``max_batch`` lines), which ``verify`` accepts.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from xnai.adapters.audit.chain import GENESIS, canonical, check, erase, seal
from xnai.adapters.storage.fsutil import DIR_MODE, FILE_MODE, atomic_write_bytes
from xnai.domain.audit import AUDIT_KEY_CONTEXT, AnchorStore, AuditAnchor, VerifyResult
from xnai.domain.ports import KeyRing

LOG_NAME = "audit.jsonl"
ANCHOR_NAME = "audit.anchor.json"
LOCK_NAME = "audit.lock"
BLOCK = 65536


@dataclass(frozen=True, slots=True)
class Anchor:
    """Where the chain starts (after trims) and where it ended at the last append."""

    seq: int = 0
    mac: str = GENESIS
    base_seq: int = 1
    base_prev: str = GENESIS
    mirrored: bool = False  # a copy is kept in an AnchorStore (absent in older anchor files)


@dataclass(slots=True)
class _Ticket:
    """One append waiting for a writer."""

    event: Mapping[str, Any]
    seq: int = 0
    error: BaseException | None = None
    done: bool = False


@dataclass(frozen=True, slots=True)
class _Tail:
    inode: int
    size: int
    mtime_ns: int
    seq: int
    mac: str


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        obj = json.loads(raw)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def _rfind_newline(fd: int, end: int) -> int:
    """Offset of the last newline before ``end``, or -1."""
    pos = end
    while pos > 0:
        start = max(0, pos - BLOCK)
        idx = os.pread(fd, pos - start, start).rfind(b"\n")
        if idx >= 0:
            return start + idx
        pos = start
    return -1


class JsonlAuditLog:
    """The ``AuditLog`` port over ``<directory>/audit.jsonl``."""

    def __init__(
        self,
        directory: Path,
        keys: KeyRing,
        *,
        context: str = AUDIT_KEY_CONTEXT,
        max_batch: int = 256,
        anchors: AnchorStore | None = None,
    ):
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.directory = directory
        self.path = directory / LOG_NAME
        self.anchor_path = directory / ANCHOR_NAME
        self.max_batch = max_batch
        self._keys = keys
        self._context = context
        self._anchors = anchors
        self._thread_lock = threading.Lock()
        self._tail: _Tail | None = None
        self._writer = threading.Lock()  # held by the thread writing a batch
        self._queue_lock = threading.Lock()
        self._queue: list[_Ticket] = []

    # -- locking and files -------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Exclusive access across threads and processes."""
        with self._thread_lock:
            self.directory.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
            os.chmod(self.directory, DIR_MODE)
            fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, FILE_MODE)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # releases the lock

    def _open_log(self) -> int:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, FILE_MODE)
        os.fchmod(fd, FILE_MODE)
        return fd

    def _key(self, key_id: str) -> bytes | None:
        return self._keys.mac_key_by_id(self._context, key_id)

    def _anchor_mac(self, key: bytes, body: Mapping[str, Any]) -> str:
        return hmac.new(key, b"anchor\x00" + canonical(body), hashlib.sha256).hexdigest()

    def _log_size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def _read_anchor(self) -> Anchor | str:
        """The anchor (the default for a new log), or why it cannot be trusted."""
        try:
            raw = self.anchor_path.read_bytes()
        except FileNotFoundError:
            if self._log_size():
                return "the anchor file is missing although the log holds lines"
            return Anchor()
        obj = _parse(raw)
        if obj is None or not isinstance(obj.get("key_id"), str):
            return "the anchor file is damaged"
        key = self._key(obj["key_id"])
        body = {k: v for k, v in obj.items() if k != "anchor_mac"}
        if key is None or not hmac.compare_digest(
            self._anchor_mac(key, body), str(obj.get("anchor_mac"))
        ):
            return "the anchor file was modified or its key is unknown"
        try:
            return Anchor(
                int(obj["seq"]),
                obj["mac"],
                int(obj["base_seq"]),
                obj["base_prev"],
                obj.get("mirrored") is True,
            )
        except (KeyError, TypeError, ValueError):
            return "the anchor file is damaged"

    def _write_anchor(self, anchor: Anchor) -> None:
        """The anchor file, then its copy in the anchor store (which may lag by one write)."""
        self._write_anchor_file(anchor)
        if self._anchors is not None:
            self._anchors.save(AuditAnchor(anchor.seq, anchor.mac))

    def _write_anchor_file(self, anchor: Anchor) -> None:
        if self._anchors is not None:
            anchor = Anchor(anchor.seq, anchor.mac, anchor.base_seq, anchor.base_prev, True)
        key_id, key = self._keys.mac_key(self._context)
        body: dict[str, Any] = {**asdict(anchor), "key_id": key_id}
        if not anchor.mirrored:
            del body["mirrored"]  # the body older versions wrote and still verify
        body["anchor_mac"] = self._anchor_mac(key, body)
        atomic_write_bytes(self.anchor_path, canonical(body) + b"\n")

    def _anchor_or_undo(self, anchor: Anchor, previous: Anchor, size: int) -> None:
        """Move the anchor to the batch just written. When it cannot be written (a full
        disk), cut the batch off again (the log ended at ``size`` under ``previous``), so no
        line stays that the anchor does not cover: the append fails, and the change it
        records is not made."""
        try:
            self._write_anchor_file(anchor)
        except BaseException:
            self._cut(size)
            raise
        if self._anchors is None:
            return
        try:
            self._anchors.save(AuditAnchor(anchor.seq, anchor.mac))
        except BaseException:
            # The copy still holds ``previous``: so does the file again, without the batch.
            # When even that fails, the file anchors the batch and the copy lags one write.
            with contextlib.suppress(OSError):
                self._write_anchor_file(previous)
                self._cut(size)
            raise

    def _cut(self, size: int) -> None:
        """Cut the log back to ``size`` bytes (needs no free space)."""
        self._tail = None
        os.truncate(self.path, size)

    def _rewrite(self, lines: list[bytes]) -> None:
        atomic_write_bytes(self.path, b"".join(lines))
        self._tail = None

    def _complete_lines(self) -> list[bytes]:
        """Every newline-terminated line (a torn last fragment is left out)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        return data[: data.rfind(b"\n") + 1].splitlines(keepends=True)

    # -- append ------------------------------------------------------------------------

    def _last(self, fd: int, anchor: Anchor | str) -> tuple[int, str]:
        """(seq, mac) of the last line; a torn fragment left by a crash is cut off first."""
        st = os.fstat(fd)
        t = self._tail
        if t is not None and (t.inode, t.size, t.mtime_ns) == (
            st.st_ino,
            st.st_size,
            st.st_mtime_ns,
        ):
            return t.seq, t.mac
        size = st.st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            size = _rfind_newline(fd, size) + 1
            os.ftruncate(fd, size)
        fallback = (anchor.base_seq - 1, anchor.base_prev) if isinstance(anchor, Anchor) else None
        if size == 0:
            return fallback or (0, GENESIS)
        start = _rfind_newline(fd, size - 1) + 1
        obj = _parse(os.pread(fd, size - start, start))
        if obj is not None and isinstance(obj.get("seq"), int) and isinstance(obj.get("mac"), str):
            return obj["seq"], obj["mac"]
        # An unreadable last line: continue after the anchor; verify reports the line.
        if isinstance(anchor, Anchor):
            return anchor.seq, anchor.mac
        return fallback or (0, GENESIS)

    def append(self, event: Mapping[str, Any]) -> int:
        """Seal ``event``, append it as one line, fsync, then move the anchor forward.

        Appends of other threads waiting at the same time go into the same write."""
        ticket = _Ticket(event)
        with self._queue_lock:
            self._queue.append(ticket)
        while not ticket.done:
            with self._writer:
                if ticket.done:  # written by the batch of the previous writer
                    break
                with self._queue_lock:
                    batch = self._queue[: self.max_batch]
                    del self._queue[: self.max_batch]
                self._write_batch(batch)
        if ticket.error is not None:
            raise ticket.error
        return ticket.seq

    def _write_batch(self, batch: list[_Ticket]) -> None:
        try:
            with self._locked():
                anchor = self._read_anchor()
                if isinstance(anchor, Anchor) and not self.anchor_path.exists():
                    self._write_anchor(anchor)  # before the first line: its loss is tampering
                fd = self._open_log()
                try:
                    seq, prev = self._last(fd, anchor)
                    before = os.fstat(fd).st_size
                    key_id, key = self._keys.mac_key(self._context)
                    chunks, last = [], seq
                    for ticket in batch:
                        line = seal(ticket.event, seq=last + 1, prev=prev, key_id=key_id, key=key)
                        chunks.append(canonical(line) + b"\n")
                        last, prev = last + 1, line["mac"]
                        ticket.seq = last
                    data = b"".join(chunks)
                    written = os.write(fd, data)
                    while written < len(data):
                        written += os.write(fd, data[written:])
                    os.fsync(fd)
                    st = os.fstat(fd)
                    self._tail = _Tail(st.st_ino, st.st_size, st.st_mtime_ns, last, prev)
                finally:
                    os.close(fd)
                # The anchor only moves on from a tail that agrees with it (or lags it by at
                # most one batch, after a crash), so a damaged log keeps failing
                # verification instead of being re-anchored.
                if isinstance(anchor, Anchor) and (
                    (seq, prev) == (anchor.seq, anchor.mac)
                    or anchor.seq < seq <= anchor.seq + self.max_batch
                    or seq == anchor.seq
                ):
                    moved = Anchor(last, prev, anchor.base_seq, anchor.base_prev)
                    self._anchor_or_undo(moved, anchor, before)
        except BaseException as exc:
            for ticket in batch:
                ticket.error = exc
            raise
        finally:
            for ticket in batch:
                ticket.done = True

    # -- reading -----------------------------------------------------------------------

    def lines(self) -> Iterator[dict[str, Any]]:
        """Every parseable complete line, oldest first (unverified)."""
        try:
            fh = self.path.open("rb")
        except FileNotFoundError:
            return
        with fh:
            for raw in fh:
                obj = _parse(raw) if raw.endswith(b"\n") else None
                if obj is not None:
                    yield obj

    def tail(self, n: int) -> list[dict[str, Any]]:
        """The last ``n`` complete lines, parsed (an unreadable one as ``{"unparsed": text}``)."""
        if n <= 0:
            return []
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return []
        try:
            end = _rfind_newline(fd, os.fstat(fd).st_size) + 1
            start = end
            for _ in range(n):
                if start <= 0:
                    break
                start = _rfind_newline(fd, start - 1) + 1
            raw = os.pread(fd, end - start, start)
        finally:
            os.close(fd)
        lines = raw.splitlines()
        return [_parse(r) or {"unparsed": r.decode("utf-8", "replace")} for r in lines]

    def verify(self) -> VerifyResult:
        """Check the whole log against its chain base and its anchor."""
        with self._locked():
            anchor = self._read_anchor()
            copy = self._anchors.load() if self._anchors is not None else None
            try:
                fh = self.path.open("rb")  # a snapshot: later rewrites replace the inode
            except FileNotFoundError:
                fh = None
            size = os.fstat(fh.fileno()).st_size if fh else 0
        if isinstance(anchor, str):
            if fh:
                fh.close()
            return VerifyResult(False, 0, None, anchor)
        keys: dict[str, bytes | None] = {}

        def key(key_id: str) -> bytes | None:
            if key_id not in keys:
                keys[key_id] = self._key(key_id)
            return keys[key_id]

        verifier = _Verifier(anchor, key, self.max_batch, copy)
        if fh is None:
            return verifier.run(iter(()))
        with fh:
            return verifier.run(_lines_upto(fh, size))

    # -- rewriting ---------------------------------------------------------------------

    def pseudonymise(self, user_id: str, *, also: Collection[str] = ()) -> int:
        """Replace the person's values by pseudonyms in every line; the chain is untouched."""
        values = frozenset({user_id, *also})
        with self._locked():
            lines = self._complete_lines()
            changed = 0
            out: list[bytes] = []
            for raw in lines:
                obj = _parse(raw)
                new = erase(obj, user_id, values, self._key) if obj is not None else None
                if new is None:
                    out.append(raw)
                else:
                    out.append(canonical(new) + b"\n")
                    changed += 1
            if changed:
                self._rewrite(out)
            return changed

    def trim(self, older_than: datetime) -> int:
        """Drop intact leading lines older than ``older_than`` and move the chain base.

        Trimming stops at the first line that is recent, unreadable or fails its check, so
        retention never removes evidence of tampering with the lines it keeps.
        """
        with self._locked():
            anchor = self._read_anchor()
            if isinstance(anchor, str):
                return 0
            lines = self._complete_lines()
            drop, base, started = 0, (anchor.base_seq, anchor.base_prev), False
            for raw in lines:
                obj = _parse(raw)
                seq = obj.get("seq") if obj is not None else None
                if not started and isinstance(seq, int) and seq < anchor.base_seq:
                    drop += 1  # left by a trim that stopped between anchor and rewrite
                    continue
                started = True
                if obj is None or not _droppable(obj, base, older_than, self._key):
                    break
                drop += 1
                base = (obj["seq"] + 1, obj["mac"])
            if not drop:
                return 0
            last = (anchor.seq, anchor.mac) if anchor.seq >= base[0] - 1 else (base[0] - 1, base[1])
            # The anchor moves first: a crash before the rewrite leaves lines below the base,
            # which verify skips and the next trim removes.
            self._write_anchor(Anchor(last[0], last[1], base[0], base[1]))
            self._rewrite(lines[drop:])
            return drop


def _lines_upto(fh: BinaryIO, size: int) -> Iterator[bytes]:
    """Complete lines within the first ``size`` bytes (a torn last fragment is skipped)."""
    read = 0
    for raw in fh:
        read += len(raw)
        if read > size or not raw.endswith(b"\n"):
            return
        yield raw


def _timestamp(obj: Mapping[str, Any]) -> datetime | None:
    try:
        ts = datetime.fromisoformat(str(obj.get("timestamp")))
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _droppable(
    obj: Mapping[str, Any],
    base: tuple[int, str],
    older_than: datetime,
    keys: Callable[[str], bytes | None],
) -> bool:
    ts = _timestamp(obj)
    return (
        ts is not None
        and ts < older_than
        and (obj.get("seq"), obj.get("prev")) == base
        and check(obj, keys) is None
    )


class _Verifier:
    """Walks the lines once, remembering what the anchor check needs."""

    def __init__(
        self,
        anchor: Anchor,
        keys: Callable[[str], bytes | None],
        max_lag: int = 1,
        copy: AuditAnchor | None = None,
    ) -> None:
        self.anchor = anchor
        self.copy = copy  # the anchor store's copy
        self.copy_mac: str | None = None  # the MAC of the line at copy.seq
        self.keys = keys
        self.max_lag = max_lag  # lines a crash may leave after the anchor (one batch)
        self.seq, self.prev = anchor.base_seq - 1, anchor.base_prev
        self.checked = 0
        self.first: int | None = None
        self.anchor_line: tuple[int, str] | None = None  # (line number, mac) at anchor.seq
        self.last_lineno = 0

    def fail(self, lineno: int | None, reason: str) -> VerifyResult:
        return VerifyResult(False, self.checked, lineno, reason, self.first, self.seq)

    def run(self, lines: Iterable[bytes]) -> VerifyResult:
        started = False
        for lineno, raw in enumerate(lines, start=1):
            obj = _parse(raw)
            if obj is None:
                return self.fail(lineno, "not a JSON object")
            seq = obj.get("seq")
            if not isinstance(seq, int):
                return self.fail(lineno, "no sequence number")
            if not started and seq < self.anchor.base_seq:
                continue  # below the chain base: removed by retention, file not yet rewritten
            started = True
            problem = self.line(obj, seq)
            if problem:
                return self.fail(lineno, problem)
            self.last_lineno = lineno
            if seq == self.anchor.seq:
                self.anchor_line = (lineno, obj["mac"])
            if self.copy is not None and seq == self.copy.seq:
                self.copy_mac = obj["mac"]
        return self.end()

    def line(self, obj: Mapping[str, Any], seq: int) -> str | None:
        expected = self.seq + 1
        if seq > expected:
            return f"expected seq {expected}, found {seq}: a line was deleted or moved"
        if seq < expected:
            return f"expected seq {expected}, found {seq}: a line was moved or repeated"
        if obj.get("prev") != self.prev:
            which = "the chain base" if seq == self.anchor.base_seq else "the previous line"
            return f"prev does not match {which}: the chain is broken"
        problem = check(obj, self.keys)
        if problem:
            return problem
        self.seq, self.prev = seq, obj["mac"]
        self.checked += 1
        if self.first is None:
            self.first = seq
        return None

    def end(self) -> VerifyResult:
        a = self.anchor
        if self.seq < a.seq:
            missing = a.seq - self.seq
            return self.fail(
                self.last_lineno + 1,
                f"the log ends at seq {self.seq} but the anchor records seq {a.seq}: "
                f"{missing} line(s) cut off the end",
            )
        if a.seq >= a.base_seq:
            lineno, mac = self.anchor_line or (self.last_lineno, "")
            if mac != a.mac:
                return self.fail(lineno, "the line at the anchor's seq is not the anchored one")
        if self.seq > a.seq + self.max_lag:
            return self.fail(
                self.last_lineno - (self.seq - a.seq - self.max_lag - 1),
                f"{self.seq - a.seq} lines after the anchor (a crash leaves at most "
                f"{self.max_lag})",
            )
        problem = self.copy_problem()
        if problem:
            return self.fail(None, problem)
        return VerifyResult(True, self.checked, None, "", self.first, self.seq)

    def copy_problem(self) -> str | None:
        """Why the anchor store's copy disagrees with the anchor file, or None."""
        a, copy = self.anchor, self.copy
        if copy is None:
            return "the database copy of the anchor is missing" if a.mirrored else None
        if copy.seq > a.seq:
            return (
                f"the database anchor records seq {copy.seq} but the anchor file seq {a.seq}: "
                "the log and its anchor file were rolled back or replaced"
            )
        if copy.seq < a.seq - self.max_lag:
            return f"the database anchor is {a.seq - copy.seq} lines behind the anchor file"
        if copy.seq == a.seq:
            expected: str | None = a.mac
        elif copy.seq == a.base_seq - 1:
            expected = a.base_prev
        else:
            expected = self.copy_mac if copy.seq >= a.base_seq else copy.mac
        if expected != copy.mac:
            return f"the database anchor disagrees with the log at seq {copy.seq}"
        return None
