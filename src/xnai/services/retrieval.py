"""Dense, lexical and hybrid (reciprocal-rank fusion) retrieval over a snapshot.

Access is enforced before ranking: for a restricted scope each index gets a row filter of
the chunks whose document belongs to a readable collection, so a chunk outside the scope is
never scored, ranked or returned, and a narrow scope still fills ``top_k``. Filters are built
once per (generation, scope) and cached; the unrestricted scope searches without one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from xnai.domain.access import AccessScope, RowFilter
from xnai.domain.models import Hit, SearchMode
from xnai.domain.ports import Embedder
from xnai.services.knowledge import Snapshot

Ranked = list[tuple[str, float]]


@dataclass(frozen=True, slots=True)
class RetrievalPolicy:
    """Knobs of retrieval."""

    candidates: int = 50
    rrf_k: int = 60
    scope_cache: int = 64  # row filters kept per generation (one per distinct scope)


@dataclass(frozen=True, slots=True)
class ScopeFilters:
    """The row filters of one scope over one snapshot's indexes."""

    vectors: RowFilter
    lexical: RowFilter

    @property
    def empty(self) -> bool:
        """True when the scope lets no chunk through."""
        return self.vectors.count == 0 and self.lexical.count == 0


class _Layout:
    """Per snapshot: the collection of every index row as a small integer code."""

    def __init__(self, snap: Snapshot) -> None:
        names = sorted({d.collection for d in snap.documents.values()})
        self.codes = {name: code for code, name in enumerate(names)}
        by_chunk = {
            cid: self.codes[doc.collection]
            for cid, chunk in snap.chunks.items()
            if (doc := snap.documents.get(chunk.doc_id)) is not None
        }
        # -1: a row with no committed chunk or document, never allowed.
        self.vectors = np.array([by_chunk.get(i, -1) for i in snap.vectors.ids()], np.int32)
        self.lexical = np.array([by_chunk.get(i, -1) for i in snap.lexical.ids()], np.int32)

    def filters(self, collections: frozenset[str]) -> ScopeFilters:
        allowed = np.array([self.codes[c] for c in collections if c in self.codes], np.int32)
        return ScopeFilters(
            RowFilter(np.isin(self.vectors, allowed)), RowFilter(np.isin(self.lexical, allowed))
        )


class Retriever:
    """Finds the chunks that best answer a query, among those the reader may see."""

    def __init__(
        self,
        snapshot: Callable[[], Snapshot],
        embedder: Embedder,
        policy: RetrievalPolicy = RetrievalPolicy(),
    ) -> None:
        self._snapshot = snapshot
        self.embedder = embedder
        self.policy = policy
        self._lock = threading.Lock()
        self._generation: int | None = None  # of the layout; keeps no old index alive
        self._layout: _Layout | None = None
        self._filters: OrderedDict[frozenset[str], ScopeFilters] = OrderedDict()

    def search(self, query: str, *, mode: SearchMode, top_k: int, scope: AccessScope) -> list[Hit]:
        """Best ``top_k`` hits for ``query`` within ``scope``; empty when nothing is visible."""
        snap = self._snapshot()
        if not snap.chunks or not query.strip():
            return []
        filters = self.filters(snap, scope)
        if filters is not None and filters.empty:
            return []
        depth = max(top_k, self.policy.candidates)
        dense: Ranked = []
        lexical: Ranked = []
        if mode is not SearchMode.LEXICAL:
            vector = self.embedder.embed([query])[0]
            dense = snap.vectors.search(vector, depth, filters.vectors if filters else None)
        if mode is not SearchMode.DENSE:
            lexical = snap.lexical.search(query, depth, filters.lexical if filters else None)
        if mode is SearchMode.HYBRID:
            fused = rrf([dense, lexical], self.policy.rrf_k)
        else:
            fused = dense or lexical
        return _hits(snap, fused[:top_k], dense, lexical, scope)

    def filters(self, snap: Snapshot, scope: AccessScope) -> ScopeFilters | None:
        """The row filters of ``scope`` over ``snap`` (cached); None when unrestricted."""
        if scope.collections is None:
            return None
        with self._lock:
            # A generation names one committed state, so a reloaded snapshot of the same
            # generation has the same rows; a filter of the wrong length is refused anyway.
            if self._generation != snap.generation or self._layout is None:
                self._generation, self._layout = snap.generation, _Layout(snap)
                self._filters.clear()
            found = self._filters.get(scope.collections)
            if found is not None:
                self._filters.move_to_end(scope.collections)
                return found
            made = self._layout.filters(scope.collections)
            self._filters[scope.collections] = made
            while len(self._filters) > max(self.policy.scope_cache, 1):
                self._filters.popitem(last=False)
            return made


def rrf(rankings: list[Ranked], k: int) -> Ranked:
    """Reciprocal-rank fusion: sum of 1 / (k + rank) over the rankings, best first."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, (cid, _) in enumerate(ranking, start=1):
            scores[cid] = scores.get(cid, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def _hits(
    snap: Snapshot, ranked: Ranked, dense: Ranked, lexical: Ranked, scope: AccessScope
) -> list[Hit]:
    dense_pos = {cid: (i, s) for i, (cid, s) in enumerate(dense, start=1)}
    lex_pos = {cid: i for i, (cid, _) in enumerate(lexical, start=1)}
    hits: list[Hit] = []
    for cid, score in ranked:
        chunk = snap.chunks.get(cid)
        if chunk is None:  # index and rows come from one commit; guard anyway
            continue
        doc = snap.documents.get(chunk.doc_id)
        if not scope.unrestricted and (doc is None or not scope.allows(doc.collection)):
            # The filters already kept it out of the ranking; this second check costs
            # O(top_k) and holds even if an index and its filter ever disagreed.
            continue
        d = dense_pos.get(cid)
        hits.append(
            Hit(
                chunk=chunk,
                score=float(score),
                title=doc.title if doc else "",
                source=doc.source if doc else "",
                dense_rank=d[0] if d else None,
                lexical_rank=lex_pos.get(cid),
                dense_score=float(d[1]) if d else None,
            )
        )
    return hits
