"""Damaged index files are found at load, named with their fix, and repaired by a rebuild."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.api.conftest import seed
from tests.index_damage import generation_dir, overwrite_4k, truncate
from xnai.adapters.index.faiss_index import FaissVectorIndex
from xnai.bootstrap import Container
from xnai.domain.access import AccessScope
from xnai.domain.errors import IndexDamagedError
from xnai.services.consistency import check
from xnai.services.knowledge import Source, sha256_bytes

MakeContainer = Callable[..., Container]


@pytest.fixture
def seeded(make_container: MakeContainer) -> Container:
    c = make_container()
    seed(c)
    return c


def sources_of(c: Container, query: str) -> list[str]:
    citations, _ = c.answers.sources(query, scope=AccessScope.everything())
    return [cit.source for cit in citations]


@pytest.mark.parametrize("damage", [overwrite_4k, truncate])
@pytest.mark.parametrize("encrypted", [True, False])
def test_damaged_vector_files_are_refused_at_load_and_by_verify(
    make_container: MakeContainer, tmp_path: Path, damage: Callable[[Path], None], encrypted: bool
) -> None:
    security = {"security": {"encryption_enabled": encrypted}}
    c = make_container(tmp_path / "d", enterprise=security)
    seed(c)
    damage(generation_dir(c.settings.data_dir) / "vectors.faiss")
    problems = check(c.kb)
    assert len(problems) == 1 and "vectors.faiss" in problems[0]
    assert "xnai index rebuild" in problems[0]
    with pytest.raises(IndexDamagedError, match="vectors.faiss"):
        c.kb.refresh()  # every later read is refused too, without reading the files again
    with pytest.raises(IndexDamagedError, match="vectors.faiss"):
        make_container(c.settings.data_dir, enterprise=security)


def test_emptied_vector_files_disagree_with_database(
    seeded: Container, make_container: MakeContainer
) -> None:
    directory = generation_dir(seeded.settings.data_dir)
    # Both vector files emptied consistently, and the recorded digests rewritten to match.
    FaissVectorIndex(seeded.embedder.dim, keyring=seeded.keyring).save(directory)
    seeded.kb.store.describe(directory, {"generation": seeded.kb.repo.current_generation()})
    assert seeded.kb.store.damage(seeded.kb.repo.current_generation()) == []
    with pytest.raises(IndexDamagedError, match="vector index holds 0 chunks, the database 2"):
        make_container(seeded.settings.data_dir)
    assert any("holds 0 chunks" in p for p in check(seeded.kb))


def test_a_missing_generation_folder_is_damage_a_rebuild_repairs(
    seeded: Container, make_container: MakeContainer
) -> None:
    directory = generation_dir(seeded.settings.data_dir)
    for path in directory.iterdir():
        path.unlink()
    directory.rmdir()
    with pytest.raises(IndexDamagedError, match="missing on disk.*xnai index rebuild"):
        make_container(seeded.settings.data_dir)
    assert seeded.kb.rebuild() == 2
    assert check(seeded.kb) == []


def test_rebuild_restores_a_damaged_index(seeded: Container, make_container: MakeContainer) -> None:
    before = sources_of(seeded, "coolant pump rpm")
    overwrite_4k(generation_dir(seeded.settings.data_dir) / "vectors.faiss")
    truncate(generation_dir(seeded.settings.data_dir) / "lexical.bm25")
    with pytest.raises(IndexDamagedError):
        seeded.kb.refresh(force=True)
    ticks: list[int] = []
    assert seeded.kb.rebuild(progress=ticks.append) == 2
    assert sum(ticks) == 2
    assert check(seeded.kb) == []
    assert sources_of(seeded, "coolant pump rpm") == before
    restarted = make_container(seeded.settings.data_dir)
    assert sources_of(restarted, "coolant pump rpm") == before
    assert restarted.kb.snapshot.generation == 2


def test_an_ingest_refuses_to_build_on_a_damaged_generation(seeded: Container) -> None:
    overwrite_4k(generation_dir(seeded.settings.data_dir) / "vectors.faiss")
    text = "# Pumps\n\nThe feed pump runs at 900 rpm.\n"
    new = Source(
        "/library/pumps.md",
        sha256_bytes(text.encode()),
        len(text),
        "Pumps",
        text,
        "text/markdown",
        "test",
        "1",
    )
    with pytest.raises(IndexDamagedError, match="xnai index rebuild"):
        seeded.kb.ingest([new])  # the damage is never carried into the next generation
    assert seeded.kb.repo.current_generation() == 1
