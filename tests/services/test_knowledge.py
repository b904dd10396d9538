"""Ingest, replace, remove and recovery of the knowledge base (real files, fake embedder)."""

from __future__ import annotations

from pathlib import Path

import pytest

from xnai.adapters.storage.fsutil import TMP_MARK
from xnai.bootstrap import Container
from xnai.domain.errors import NotFoundError
from xnai.domain.models import IngestReport
from xnai.services.consistency import check


def ingest(c: Container, *paths: Path) -> IngestReport:
    return c.ingestion.ingest_files(c.ingestion.document_files(list(paths)), user="tester")


@pytest.fixture
def library(tmp_path: Path) -> Path:
    lib = tmp_path / "lib"
    (lib / "sub").mkdir(parents=True)
    (lib / "alpha.md").write_text("# Alpha\n\nAlpha particles are helium nuclei.\n")
    (lib / "sub" / "beta.txt").write_text("Beta decay emits an electron and a neutrino.\n")
    (lib / ".hidden.md").write_text("never ingested\n")
    (lib / "image.png").write_bytes(b"\x89PNG....")
    return lib


def test_ingest_folder_recursively_skipping_hidden_and_unsupported(
    container: Container, library: Path
) -> None:
    report = ingest(container, library)
    assert sorted(Path(s).name for s in report.added) == ["alpha.md", "beta.txt"]
    assert report.failed == ()
    assert report.generation == 1
    snap = container.kb.snapshot
    assert len(snap.documents) == 2
    assert len(snap.vectors) == len(snap.chunks) == len(snap.lexical) == report.chunks_added
    assert check(container.kb) == []


def test_reingest_unchanged_does_nothing(container: Container, library: Path) -> None:
    ingest(container, library)
    before = container.kb.store.generations()
    report = ingest(container, library)
    assert len(report.unchanged) == 2 and not report.added and not report.replaced
    assert report.generation == 1
    assert container.kb.store.generations() == before


def test_changed_file_replaces_its_chunks(container: Container, library: Path) -> None:
    ingest(container, library)
    old = container.kb.repo.document_by_source(str((library / "alpha.md").resolve()))
    assert old is not None
    (library / "alpha.md").write_text("# Alpha\n\nAlpha Centauri is a star system.\n")
    report = ingest(container, library)
    assert [Path(s).name for s in report.replaced] == ["alpha.md"]
    snap = container.kb.snapshot
    new = snap.documents[old.doc_id]
    assert new.sha256 != old.sha256
    assert not set(old.chunk_ids) & set(snap.chunks)
    assert not set(old.chunk_ids) & set(snap.vectors.ids())
    assert any("Centauri" in snap.chunks[c].text for c in new.chunk_ids)
    assert check(container.kb) == []


def test_duplicate_content_under_another_name_is_refused(
    container: Container, library: Path
) -> None:
    ingest(container, library)
    twin = library / "copy-of-alpha.md"
    twin.write_bytes((library / "alpha.md").read_bytes())
    report = ingest(container, twin)
    assert len(report.failed) == 1
    assert "duplicate content of" in report.failed[0][1]
    assert report.failed[0][1].endswith("alpha.md (same sha256)")


def test_remove_deletes_from_every_index(container: Container, library: Path) -> None:
    ingest(container, library)
    source = str((library / "alpha.md").resolve())
    doc = container.kb.remove(source)
    snap = container.kb.snapshot
    assert doc.doc_id not in snap.documents
    for ids in (snap.vectors.ids(), snap.lexical.ids(), list(snap.chunks)):
        assert not set(doc.chunk_ids) & set(ids)
    manifest = container.kb.store.read_manifest()
    assert manifest is not None and doc.doc_id not in manifest["documents"]
    with pytest.raises(NotFoundError):
        container.kb.remove(source)


def test_manifest_records_provenance(container: Container, library: Path) -> None:
    ingest(container, library)
    manifest = container.kb.store.read_manifest()
    assert manifest is not None
    entry = next(e for e in manifest["documents"].values() if e["source"].endswith("alpha.md"))
    data = (library / "alpha.md").read_bytes()
    assert entry["size"] == len(data)
    assert len(entry["sha256"]) == 64
    assert entry["ingested_by"] == "tester"
    assert entry["ingested_at"].endswith("+00:00")
    assert set(entry["versions"]) == {"loader", "chunker", "embedder"}
    assert entry["chunk_ids"]
    path = container.settings.data_dir / "knowledge" / "ingest_manifest.json"
    assert path.stat().st_mode & 0o777 == 0o600


class ExplodingStore:
    """Wraps the real store and dies at one named step of a commit, like a crash would."""

    def __init__(self, inner: object, step: str) -> None:
        self._inner = inner
        self._step = step
        self._committing = False  # recovery before a write uses some steps too

    def __getattr__(self, name: str) -> object:
        attr = getattr(self._inner, name)
        self._committing = self._committing or name == "publish"
        if name == self._step and self._committing:

            def boom(*a: object, **k: object) -> object:
                raise KeyboardInterrupt(f"crash at {name}")

            return boom
        return attr


@pytest.mark.parametrize("step", ["publish", "set_pointer", "write_manifest", "cleanup"])
def test_recovery_after_a_crash_at_each_commit_step(
    make_container, library: Path, tmp_path: Path, step: str
) -> None:
    first = make_container(tmp_path / "d")
    ingest(first, library / "alpha.md")
    committed_before = first.kb.repo.current_generation()
    first.kb.store = ExplodingStore(first.kb.store, step)  # type: ignore[assignment]
    with pytest.raises(KeyboardInterrupt):
        ingest(first, library / "sub" / "beta.txt")
    again = make_container(tmp_path / "d")  # a restart: open() recovers
    assert check(again.kb) == []
    names = {Path(d.source).name for d in again.kb.snapshot.documents.values()}
    if step == "publish":  # died before the commit point: the old state
        assert again.kb.repo.current_generation() == committed_before
        assert names == {"alpha.md"}
    else:  # died after it: rolled forward
        assert names == {"alpha.md", "beta.txt"}
    leftovers = [p for p in (tmp_path / "d").rglob(f"{TMP_MARK}*")]
    assert leftovers == []


def test_files_are_owner_only(container: Container, library: Path) -> None:
    ingest(container, library)
    data = container.settings.data_dir
    for path in [data / "xnai.db", *(data / "index").rglob("*")]:
        if path.is_file():
            assert path.stat().st_mode & 0o077 == 0, path


def test_a_reader_sees_a_generation_committed_by_another_process(
    make_container, library: Path, tmp_path: Path
) -> None:
    server = make_container(tmp_path / "shared")
    assert server.kb.snapshot.generation == 0
    writer = make_container(tmp_path / "shared")  # e.g. `xnai ingest` while serving
    ingest(writer, library)
    snap = server.kb.snapshot  # a stat of CURRENT notices the new pointer
    assert snap.generation == 1
    assert len(snap.documents) == 2


def test_opening_does_not_wait_for_a_writer_holding_the_lock(
    make_container, library: Path, tmp_path: Path
) -> None:
    writer = make_container(tmp_path / "shared")
    ingest(writer, library)
    with writer.kb.store.lock():  # a long ingest in another process
        reader = make_container(tmp_path / "shared")  # would deadlock if open() waited
        assert reader.kb.snapshot.generation == 1


def test_the_same_file_named_twice_in_one_run_is_ingested_once(
    container: Container, library: Path
) -> None:
    report = ingest(container, library, library / "alpha.md")
    assert sorted(Path(s).name for s in report.added) == ["alpha.md", "beta.txt"]
    assert [Path(s).name for s in report.unchanged] == ["alpha.md"]
    assert check(container.kb) == []
