"""Checks that the committed database rows, index files and manifest agree exactly."""

from __future__ import annotations

from collections import Counter

from xnai.domain.errors import IndexDamagedError
from xnai.services.knowledge import KnowledgeBase


def check(kb: KnowledgeBase) -> list[str]:
    """Every disagreement found, as readable sentences; empty when consistent. Damaged
    index files are one problem that names the fix."""
    problems: list[str] = []
    generation = kb.repo.current_generation()
    pointer = kb.store.read_pointer()
    if generation and pointer != generation:
        problems.append(f"pointer names generation {pointer}, database has {generation}")
    strays = [g for g in kb.store.generations() if g > generation]
    if strays:
        problems.append(f"uncommitted generations on disk: {strays}")
    manifest = kb.store.read_manifest()
    if manifest != kb.manifest():
        problems.append("manifest differs from the database")
    try:
        snap = kb.refresh(force=True)  # checks every file's sha256 and the chunk counts
    except IndexDamagedError as exc:
        return [*problems, str(exc)]
    db_chunks = Counter(cid for d in snap.documents.values() for cid in d.chunk_ids)
    for name, ids in (("vector", snap.vectors.ids()), ("lexical", snap.lexical.ids())):
        counted = Counter(ids)
        dupes = sorted(cid for cid, n in counted.items() if n > 1)
        if dupes:
            problems.append(f"{name} index holds duplicates: {dupes[:5]}")
        if set(counted) != set(db_chunks):
            missing = sorted(set(db_chunks) - set(counted))[:5]
            extra = sorted(set(counted) - set(db_chunks))[:5]
            problems.append(f"{name} index and database differ: missing {missing}, extra {extra}")
    if set(snap.chunks) != set(db_chunks):
        problems.append("chunk rows and document chunk lists differ")
    return problems
