"""Encryption at rest through the real container: no document text in plain anywhere under
the data directory, tampering is an IntegrityError, and key rotation re-encrypts everything."""

from __future__ import annotations

import base64
import json
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xnai.adapters.memory.audit import RecordingAudit
from xnai.adapters.security.encrypted_files import EncryptedFiles
from xnai.adapters.security.keyring import FernetKeyRing
from xnai.bootstrap import Container
from xnai.domain.access import AccessScope
from xnai.domain.errors import ConfigError, IndexDamagedError, IntegrityError
from xnai.domain.keys import KeyState
from xnai.services.answer import Done
from xnai.services.keys import KeyRotation

MakeContainer = Callable[..., Container]


class Canaries:
    """Unique marker strings planted in titles and bodies of a small library."""

    def __init__(self) -> None:
        tag = secrets.token_hex(4)
        self.body = {s: f"Canary{s.capitalize()}Body{tag}Q7" for s in ("txt", "md", "html", "up")}
        self.title = {s: f"Canary{s.capitalize()}Title{tag}Z9" for s in ("md", "html", "up")}

    def all(self) -> list[str]:
        return [*self.body.values(), *self.title.values()]

    def forms(self) -> Iterator[bytes]:
        """Every byte form a canary could take on disk: as written, lowercased (the BM25
        vocabulary), and UTF-16 (either byte order)."""
        for canary in self.all():
            for text in (canary, canary.lower()):
                yield text.encode("utf-8")
                yield text.encode("utf-16-le")
                yield text.encode("utf-16-be")


@pytest.fixture
def canaries() -> Canaries:
    return Canaries()


@pytest.fixture
def library(tmp_path: Path, canaries: Canaries) -> Path:
    lib = tmp_path / "lib"
    lib.mkdir()
    b, t = canaries.body, canaries.title
    (lib / "notes.txt").write_text(
        f"The lighthouse keeper logs the fog horn schedule. Secret word {b['txt']}.\n"
    )
    (lib / "guide.md").write_text(
        f"# {t['md']}\n\n## Marmoset care\n\nMarmosets eat tree gum. Code {b['md']}.\n"
    )
    (lib / "page.html").write_text(
        f"<html><head><title>{t['html']}</title></head><body><h1>Glaciers</h1>"
        f"<p>Glaciers carve fjords slowly. Marker {b['html']}.</p></body></html>"
    )
    return lib


def ingest_library(c: Container, lib: Path, canaries: Canaries) -> None:
    report = c.ingestion.ingest_files(c.ingestion.document_files([lib]), user="tester")
    assert report.failed == () and len(report.added) == 3
    upload = f"# {canaries.title['up']}\n\nVolcanoes vent sulfur. Token {canaries.body['up']}.\n"
    report = c.ingestion.ingest_uploads([("upload.md", upload.encode())], user="tester")
    assert report.failed == () and len(report.added) == 1


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def plaintext_leaks(root: Path, forms: list[bytes]) -> list[str]:
    leaks = []
    for path in files_under(root):
        data = path.read_bytes()
        leaks += [f"{path.relative_to(root)}: {f!r}" for f in forms if f in data]
    return leaks


def vector_forms(c: Container) -> list[bytes]:
    """Each chunk's embedding as the float32 bytes a plain index file holds (embeddings
    can be inverted to text)."""
    chunks = c.kb.snapshot.chunks.values()
    texts = [f"{ch.heading}\n{ch.text}" if ch.heading else ch.text for ch in chunks]
    return [np.asarray(v, dtype=np.float32).tobytes() for v in c.embedder.embed(texts)]


def cited(c: Container, query: str) -> list[tuple[str, str]]:
    """(title, chunk text) of the sources retrieved for ``query``."""
    citations, _ = c.answers.sources(query, scope=AccessScope.everything())
    snap = c.kb.snapshot
    return [(cit.title, snap.chunks[cit.chunk_id].text) for cit in citations]


def assert_everything_readable(c: Container, canaries: Canaries) -> None:
    """Queries find and cite the canaries: decryption works end to end."""
    for query, body, title in [
        ("marmosets tree gum", canaries.body["md"], canaries.title["md"]),
        ("glaciers carve fjords", canaries.body["html"], canaries.title["html"]),
        ("lighthouse fog horn", canaries.body["txt"], None),
        ("volcanoes vent sulfur", canaries.body["up"], canaries.title["up"]),
    ]:
        hits = cited(c, query)
        assert any(body in text for _, text in hits), query
        if title is not None:
            assert any(t == title for t, text in hits if body in text), query
    lexical = c.kb.snapshot.lexical.search("fjords glaciers", 3)
    assert lexical and canaries.body["html"] in c.kb.snapshot.chunks[lexical[0][0]].text
    manifest = c.kb.store.read_manifest()
    assert manifest is not None
    assert {e["title"] for e in manifest["documents"].values()} >= set(canaries.title.values())
    for path in (c.settings.data_dir / "originals").iterdir():
        assert canaries.body["up"].encode() in c.originals.read(path)


@pytest.fixture
def filled(make_container: MakeContainer, library: Path, canaries: Canaries) -> Container:
    c = make_container()
    ingest_library(c, library, canaries)
    return c


# -- nothing in plain --------------------------------------------------------------------


def test_no_canary_in_plain_anywhere_under_the_data_directory(
    filled: Container, canaries: Canaries
) -> None:
    data = filled.settings.data_dir
    assert_everything_readable(filled, canaries)
    prepared = filled.answers.prepare("glaciers carve fjords", scope=AccessScope.everything())
    done = [e for e in filled.answers.stream(prepared) if isinstance(e, Done)]
    assert done and done[0].answer.citations  # an answered question leaves no text either
    names = {p.name for p in files_under(data)}
    assert {"xnai.db", "xnai.db-wal", "master.key", "ingest_manifest.json"} <= names
    assert any(n.endswith(".md") for n in names)  # the kept original
    assert {"lexical.jsonl", "lexical.bm25", "vectors.faiss", "vector_ids.json"} <= names
    assert plaintext_leaks(data, list(canaries.forms())) == []
    assert plaintext_leaks(data, vector_forms(filled)) == []  # nor any embedding


def test_the_scan_would_see_plaintext(
    make_container: MakeContainer, library: Path, canaries: Canaries, tmp_path: Path
) -> None:
    off = make_container(tmp_path / "plain", enterprise={"security": {"encryption_enabled": False}})
    ingest_library(off, library, canaries)
    data = off.settings.data_dir
    leaks = plaintext_leaks(data, list(canaries.forms()))
    assert any(leak.startswith("xnai.db") for leak in leaks)
    assert any("lexical.jsonl" in leak for leak in leaks)
    assert any("originals" in leak for leak in leaks)
    assert any("vectors.faiss" in leak for leak in plaintext_leaks(data, vector_forms(off)))
    assert (off.settings.data_dir / "keys" / "master.key").is_file()  # MAC keys need it
    assert_everything_readable(off, canaries)


def test_rows_hold_tokens_and_the_key_file_is_owner_only(filled: Container) -> None:
    data = filled.settings.data_dir
    key_file = data / "keys" / "master.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert key_file.parent.stat().st_mode & 0o777 == 0o700
    with sqlite3.connect(data / "xnai.db") as db:
        values = [v for row in db.execute("SELECT text, heading FROM chunks") for v in row]
        values += [v for (v,) in db.execute("SELECT title FROM documents")]
    assert values and all(v.startswith("gAAAAA") for v in values)
    with filled.kb.repo.engine.connect() as conn:  # type: ignore[attr-defined]
        assert conn.exec_driver_sql("PRAGMA secure_delete").scalar() == 1


# -- tampering ---------------------------------------------------------------------------


def flip_token(token: bytes, at: int = -40) -> bytes:
    raw = bytearray(base64.urlsafe_b64decode(token))
    raw[at] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw))


def flip_file(path: Path) -> None:
    path.write_bytes(flip_token(path.read_bytes()))


def current_generation_dir(c: Container) -> Path:
    return c.kb.store.generation_dir(c.kb.repo.current_generation())


def test_a_flipped_byte_in_a_chunk_row_is_an_integrity_error(
    filled: Container, make_container: MakeContainer
) -> None:
    data = filled.settings.data_dir
    with sqlite3.connect(data / "xnai.db") as db:
        chunk_id, text = db.execute("SELECT chunk_id, text FROM chunks LIMIT 1").fetchone()
        db.execute(
            "UPDATE chunks SET text = ? WHERE chunk_id = ?",
            (flip_token(text.encode()).decode(), chunk_id),
        )
    with pytest.raises(IntegrityError, match=chunk_id):
        filled.kb.repo.chunks()
    with pytest.raises(IntegrityError, match="integrity check"):
        make_container(data)  # a restart refuses to serve altered text


@pytest.mark.parametrize(
    "name", ["lexical.jsonl", "lexical.bm25", "vectors.faiss", "vector_ids.json"]
)
def test_a_flipped_byte_in_an_index_file_fails_its_integrity_check_and_is_named(
    filled: Container, make_container: MakeContainer, name: str
) -> None:
    path = current_generation_dir(filled) / name
    flip_file(path)
    with pytest.raises(IndexDamagedError, match=name) as caught:
        make_container(filled.settings.data_dir)
    assert "integrity check" in str(caught.value) and "xnai index rebuild" in str(caught.value)


def test_a_flipped_byte_in_an_original_is_an_integrity_error(filled: Container) -> None:
    (path,) = (filled.settings.data_dir / "originals").iterdir()
    flip_file(path)
    with pytest.raises(IntegrityError, match=path.name):
        filled.originals.read(path)


def test_a_flipped_byte_in_the_manifest_is_an_integrity_error(filled: Container) -> None:
    flip_file(filled.kb.store.manifest_path)  # type: ignore[attr-defined]
    with pytest.raises(IntegrityError, match="delete the file"):
        filled.kb.store.read_manifest()


# -- keys and data directories -----------------------------------------------------------


def test_a_data_directory_with_data_but_no_key_file_is_refused(
    filled: Container, make_container: MakeContainer
) -> None:
    data = filled.settings.data_dir
    (data / "keys" / "master.key").unlink()
    with pytest.raises(ConfigError, match="master key file .* is missing"):
        make_container(data)
    assert not (data / "keys" / "master.key").exists()  # no silent new key


def test_a_key_from_the_environment_makes_no_key_file(
    make_container: MakeContainer, library: Path, canaries: Canaries, tmp_path: Path
) -> None:
    key = FernetKeyRing.generate_key()
    security = {"security": {"master_key": key}}
    c = make_container(tmp_path / "env", enterprise=security)
    ingest_library(c, library, canaries)
    assert not (tmp_path / "env" / "keys").exists()
    assert_everything_readable(make_container(tmp_path / "env", enterprise=security), canaries)
    wrong = {"security": {"master_key": FernetKeyRing.generate_key()}}
    with pytest.raises(IntegrityError):
        make_container(tmp_path / "env", enterprise=wrong)


# -- rotation ----------------------------------------------------------------------------


def ciphertexts(data: Path) -> list[bytes]:
    """Distinctive pieces of every ciphertext on disk: whole row tokens, file slices."""
    with sqlite3.connect(data / "xnai.db") as db:
        rows = [v for row in db.execute("SELECT text, heading FROM chunks") for v in row]
        rows += [v for (v,) in db.execute("SELECT title FROM documents")]
    pieces = [v.encode()[20:] for v in rows]  # past the version and time prefix
    for path in files_under(data):
        if path.parent.name == "originals" or path.name in (
            "lexical.jsonl",
            "lexical.bm25",
            "ingest_manifest.json",
        ):
            raw = path.read_bytes()
            pieces.append(raw[len(raw) // 2 : len(raw) // 2 + 48])
    return pieces


def old_ciphertext_on_disk(data: Path, old: list[bytes]) -> list[str]:
    found = []
    for path in files_under(data):
        content = path.read_bytes()
        found += [str(path.relative_to(data)) for piece in old if piece in content]
    return found


def master_keys(data: Path) -> list[str]:
    return [k["key"] for k in json.loads((data / "keys" / "master.key").read_text())["keys"]]


def assert_only_readable_with(data: Path, key: str, c: Container) -> None:
    """Every stored ciphertext decrypts with ``key`` alone."""
    ring = FernetKeyRing.from_keys([key])
    with sqlite3.connect(data / "xnai.db") as db:
        for (value,) in db.execute("SELECT text FROM chunks"):
            ring.decrypt("user_data", value.encode())
    files = [s for s in c.encrypted_stores if isinstance(s, EncryptedFiles)]
    assert files and files[0].paths()
    for path in files[0].paths():
        ring.decrypt("user_data", path.read_bytes())


def test_rotate_reencrypts_everything_and_retires_the_old_key(
    filled: Container, make_container: MakeContainer, canaries: Canaries
) -> None:
    data = filled.settings.data_dir
    filled.key_rotation.audit = audit = RecordingAudit()
    (old_key,) = master_keys(data)
    old_id = filled.keyring.mac_key("audit_logs")[0]
    old = ciphertexts(data)
    report = filled.key_rotation.rotate(user_id="admin-1")
    assert not report.resumed and report.retired == (old_id,)
    assert report.rewritten["documents and chunks"] > 0 and report.rewritten["files"] >= 5
    (new_key,) = master_keys(data)
    assert new_key != old_key and report.key_id != old_id
    states = {k.key_id: k.state for k in filled.key_rotation.status().keys}
    assert states == {report.key_id: KeyState.CURRENT, old_id: KeyState.RETIRED}
    assert old_ciphertext_on_disk(data, old) == []
    assert_only_readable_with(data, new_key, filled)
    with pytest.raises(IntegrityError):
        FernetKeyRing.from_keys([old_key]).decrypt(
            "user_data", (data / "knowledge" / "ingest_manifest.json").read_bytes()
        )
    begin, event = [e for e in audit.events if e["event_type"] == "key_rotation"]
    assert begin["action"] == "rotate_begin" and begin["details"]["from_key"] == old_id
    assert event["action"] == "rotate" and event["success"] and event["user_id"] == "admin-1"
    assert event["details"]["key_id"] == report.key_id
    assert event["details"]["retired"] == [old_id]
    assert_everything_readable(make_container(data), canaries)
    assert plaintext_leaks(data, list(canaries.forms())) == []


def test_an_interrupted_rotation_stays_readable_and_a_second_rotate_completes_it(
    filled: Container, make_container: MakeContainer, canaries: Canaries
) -> None:
    data = filled.settings.data_dir
    old = ciphertexts(data)
    added = filled.key_rotation.keyring.add_key()  # the new key is on the ring ...
    assert filled.kb.repo.reencrypt() > 0  # type: ignore[attr-defined]  # only the database
    status = make_container(data).key_rotation.status()
    assert status.rotation_pending and status.current.key_id == added.key_id
    assert_everything_readable(make_container(data), canaries)  # a restart mid-rotation
    assert old_ciphertext_on_disk(data, old)  # the files still have the old key's tokens
    report = make_container(data).key_rotation.rotate()
    assert report.resumed and report.key_id == added.key_id and len(report.retired) == 1
    assert old_ciphertext_on_disk(data, old) == []
    assert_everything_readable(make_container(data), canaries)


class Crashing:
    """A store that dies while re-encrypting, like a killed process would."""

    name = "crashing"

    def reencrypt(self) -> int:
        raise OSError("disk full")


class LockProbe:
    """A store that records whether the index writer lock was held while it ran."""

    name = "probe"

    def __init__(self, c: Container) -> None:
        self.c = c
        self.lock_was_free: bool | None = None

    def reencrypt(self) -> int:
        with self.c.kb.store.try_lock() as acquired:
            self.lock_was_free = acquired
        return 0


def rotation(c: Container, stores: list[Any], audit: RecordingAudit) -> KeyRotation:
    return KeyRotation(
        c.key_rotation.keyring, [*c.encrypted_stores, *stores], c.kb.store.lock, audit
    )


def test_a_failed_rotation_is_audited_keeps_data_readable_and_can_be_rerun(
    filled: Container, make_container: MakeContainer, canaries: Canaries
) -> None:
    audit = RecordingAudit()
    with pytest.raises(OSError, match="disk full"):
        rotation(filled, [Crashing()], audit).rotate(user_id="admin-1")
    begin, event = audit.events
    assert begin["action"] == "rotate_begin" and begin["success"]
    assert event["event_type"] == "key_rotation" and not event["success"]
    assert "disk full" in event["details"]["error"]
    assert_everything_readable(make_container(filled.settings.data_dir), canaries)
    probe = LockProbe(filled)
    report = rotation(filled, [probe], audit).rotate()
    assert report.resumed and len(report.retired) == 1
    assert probe.lock_was_free is False  # rotation held the writer lock: no ingest races it
    assert_everything_readable(make_container(filled.settings.data_dir), canaries)


def test_a_running_server_follows_a_rotation_made_by_another_process(
    filled: Container, make_container: MakeContainer, canaries: Canaries, tmp_path: Path
) -> None:
    data = filled.settings.data_dir
    server = make_container(data)
    make_container(data).key_rotation.rotate()  # `xnai keys rotate` in another process
    (new_key,) = master_keys(data)
    extra = tmp_path / "extra.md"
    extra.write_text("# Otters\n\nOtters hold hands while they sleep.\n")
    assert server.ingestion.ingest_files([extra], user="tester").added
    assert_only_readable_with(data, new_key, server)
    assert_everything_readable(make_container(data), canaries)


def test_deleted_rows_are_zeroed_in_the_database_file(filled: Container, library: Path) -> None:
    data = filled.settings.data_dir
    doc = filled.kb.repo.document_by_source(str((library / "page.html").resolve()))
    assert doc is not None
    with sqlite3.connect(data / "xnai.db") as db:
        marks = "?" * len(doc.chunk_ids)
        query = f"SELECT text FROM chunks WHERE chunk_id IN ({','.join(marks)})"
        gone = [v.encode()[20:] for (v,) in db.execute(query, doc.chunk_ids)]
        gone += [v.encode()[20:] for (v,) in db.execute("SELECT title FROM documents")]
    filled.kb.remove(doc.doc_id)
    with filled.kb.repo.engine.connect() as conn:  # type: ignore[attr-defined]
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db_files = [p for p in files_under(data) if p.name.startswith("xnai.db")]
    left = sum(piece in p.read_bytes() for p in db_files for piece in gone)
    assert left == 3  # the titles of the other three documents
