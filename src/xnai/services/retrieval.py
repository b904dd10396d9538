"""Dense, lexical and hybrid (reciprocal-rank fusion) retrieval over a snapshot."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from xnai.domain.models import Hit, SearchMode
from xnai.domain.ports import Embedder
from xnai.services.knowledge import Snapshot

Ranked = list[tuple[str, float]]


@dataclass(frozen=True, slots=True)
class RetrievalPolicy:
    """Knobs of retrieval."""

    candidates: int = 50
    rrf_k: int = 60


class Retriever:
    """Finds the chunks that best answer a query."""

    def __init__(
        self,
        snapshot: Callable[[], Snapshot],
        embedder: Embedder,
        policy: RetrievalPolicy = RetrievalPolicy(),
    ) -> None:
        self._snapshot = snapshot
        self.embedder = embedder
        self.policy = policy

    def search(self, query: str, *, mode: SearchMode, top_k: int) -> list[Hit]:
        """Best ``top_k`` hits for ``query``; empty when the library is empty."""
        snap = self._snapshot()
        if not snap.chunks or not query.strip():
            return []
        depth = max(top_k, self.policy.candidates)
        dense: Ranked = []
        lexical: Ranked = []
        if mode is not SearchMode.LEXICAL:
            vector = self.embedder.embed([query])[0]
            dense = snap.vectors.search(vector, depth)
        if mode is not SearchMode.DENSE:
            lexical = snap.lexical.search(query, depth)
        if mode is SearchMode.HYBRID:
            fused = rrf([dense, lexical], self.policy.rrf_k)
        else:
            fused = dense or lexical
        return _hits(snap, fused[:top_k], dense, lexical)


def rrf(rankings: list[Ranked], k: int) -> Ranked:
    """Reciprocal-rank fusion: sum of 1 / (k + rank) over the rankings, best first."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, (cid, _) in enumerate(ranking, start=1):
            scores[cid] = scores.get(cid, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def _hits(snap: Snapshot, ranked: Ranked, dense: Ranked, lexical: Ranked) -> list[Hit]:
    dense_pos = {cid: (i, s) for i, (cid, s) in enumerate(dense, start=1)}
    lex_pos = {cid: i for i, (cid, _) in enumerate(lexical, start=1)}
    hits: list[Hit] = []
    for cid, score in ranked:
        chunk = snap.chunks.get(cid)
        if chunk is None:  # index and rows come from one commit; guard anyway
            continue
        doc = snap.documents.get(chunk.doc_id)
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
