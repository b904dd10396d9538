"""Ranking metrics with the usual trec_eval definitions and binary gains.

- ``ndcg_at_k``: DCG = sum over ranks i <= k of gain_i / log2(i + 1), gain 1 for a relevant
  document and 0 otherwise; divided by the DCG of the ideal ranking (all relevant documents
  first, cut at k). trec_eval's ``ndcg_cut.10``.
- ``recall_at_k``: relevant documents in the top k / all relevant documents (``recall.k``).
- ``mrr_at_k``: 1 / rank of the first relevant document within the top k, else 0
  (``recip_rank`` cut at k).

A document counts as relevant when its qrels score is > 0. ``evaluate`` averages over every
query with at least one relevant document; a query missing from the run scores 0 (as
``trec_eval -c``). Repeated documents in a ranking count once, at their first rank.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence

Qrels = Mapping[str, Mapping[str, int]]
Run = Mapping[str, Sequence[str]]


def _unique(ranked: Iterable[str]) -> list[str]:
    """``ranked`` without repeats, first occurrence kept."""
    seen: set[str] = set()
    out: list[str] = []
    for doc in ranked:
        if doc not in seen:
            seen.add(doc)
            out.append(doc)
    return out


def dcg(gains: Sequence[float]) -> float:
    """Discounted cumulative gain of gains listed by rank (rank 1 first)."""
    return sum(g / math.log2(rank + 1) for rank, g in enumerate(gains, start=1))


def ndcg_at_k(ranked: Sequence[str], relevant: Collection[str], k: int = 10) -> float:
    """nDCG@k with binary gains; 0 when nothing is relevant."""
    if not relevant:
        return 0.0
    top = _unique(ranked)[:k]
    ideal = dcg([1.0] * min(len(relevant), k))
    return dcg([1.0 if doc in relevant else 0.0 for doc in top]) / ideal


def recall_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Share of the relevant documents found in the top k; 0 when nothing is relevant."""
    if not relevant:
        return 0.0
    found = sum(1 for doc in _unique(ranked)[:k] if doc in relevant)
    return found / len(relevant)


def mrr_at_k(ranked: Sequence[str], relevant: Collection[str], k: int = 10) -> float:
    """Reciprocal rank of the first relevant document within the top k, else 0."""
    for rank, doc in enumerate(_unique(ranked)[:k], start=1):
        if doc in relevant:
            return 1.0 / rank
    return 0.0


def relevant_docs(judgments: Mapping[str, int]) -> set[str]:
    """Documents judged relevant (score > 0)."""
    return {doc for doc, score in judgments.items() if score > 0}


def evaluate(run: Run, qrels: Qrels) -> dict[str, float]:
    """Mean nDCG@10, Recall@10, Recall@100 and MRR@10 over the judged queries."""
    totals = {"ndcg10": 0.0, "recall10": 0.0, "recall100": 0.0, "mrr10": 0.0}
    queries = 0
    for qid, judgments in qrels.items():
        relevant = relevant_docs(judgments)
        if not relevant:
            continue
        ranked = run.get(qid, ())
        totals["ndcg10"] += ndcg_at_k(ranked, relevant, 10)
        totals["recall10"] += recall_at_k(ranked, relevant, 10)
        totals["recall100"] += recall_at_k(ranked, relevant, 100)
        totals["mrr10"] += mrr_at_k(ranked, relevant, 10)
        queries += 1
    if queries == 0:
        raise ValueError("no query has a relevant document")
    return {name: value / queries for name, value in totals.items()}


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between ranks (numpy's default)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)
