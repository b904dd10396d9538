"""The benchmark's ranking metrics against values computed by hand (trec_eval definitions)."""

from __future__ import annotations

import math

import pytest
from bench.metrics import evaluate, mrr_at_k, ndcg_at_k, percentile, recall_at_k

LOG2_3 = math.log2(3)  # the discount of rank 2


def test_ndcg_two_of_three_relevant() -> None:
    # DCG = 1/log2(2) + 1/log2(4) = 1.5; ideal = 1 + 1/log2(3)
    assert ndcg_at_k(["a", "b", "c"], {"a", "c"}) == pytest.approx(1.5 / (1 + 1 / LOG2_3))
    assert ndcg_at_k(["a", "b", "c"], {"a", "c"}) == pytest.approx(0.9197207891)


def test_ndcg_single_relevant_at_rank_two() -> None:
    assert ndcg_at_k(["x", "a"], {"a"}) == pytest.approx(1 / LOG2_3)
    assert ndcg_at_k(["a", "x"], {"a"}) == 1.0


def test_ndcg_ideal_is_cut_at_k() -> None:
    relevant = {f"r{i}" for i in range(12)}
    ranked = [f"r{i}" for i in range(12)]
    assert ndcg_at_k(ranked, relevant, 10) == pytest.approx(1.0)
    # Only the top 10 count: 10 relevant of 12 is still a perfect top 10.
    assert recall_at_k(ranked, relevant, 10) == pytest.approx(10 / 12)


def test_relevant_beyond_the_cutoff_counts_for_nothing() -> None:
    ranked = [f"n{i}" for i in range(10)] + ["a"]
    assert ndcg_at_k(ranked, {"a"}, 10) == 0.0
    assert mrr_at_k(ranked, {"a"}, 10) == 0.0
    assert recall_at_k(ranked, {"a"}, 10) == 0.0
    assert recall_at_k(ranked, {"a"}, 100) == 1.0


def test_recall_and_mrr() -> None:
    ranked = ["x", "a", "y", "b"]
    relevant = {"a", "b", "c", "d"}
    assert recall_at_k(ranked, relevant, 1) == 0.0
    assert recall_at_k(ranked, relevant, 2) == 0.25
    assert recall_at_k(ranked, relevant, 10) == 0.5
    assert mrr_at_k(ranked, relevant) == 0.5
    assert mrr_at_k(["y", "z", "b"], relevant) == pytest.approx(1 / 3)


def test_repeated_documents_count_once() -> None:
    # Deduplicated ranking is ["a", "x"]: the repeat of "a" does not gain twice.
    assert ndcg_at_k(["a", "a", "x"], {"a", "x"}) == 1.0
    assert recall_at_k(["a", "a", "b"], {"a", "b"}, 2) == 1.0


def test_empty_cases() -> None:
    assert ndcg_at_k([], {"a"}) == 0.0
    assert ndcg_at_k(["a"], set()) == 0.0
    assert mrr_at_k([], {"a"}) == 0.0


def test_evaluate_averages_over_judged_queries() -> None:
    qrels = {
        "q1": {"a": 1, "c": 1},
        "q2": {"b": 2, "z": 0},  # graded 2 counts as relevant (binary), 0 as not relevant
        "q3": {"z": 0},  # nothing relevant: left out of the mean, as trec_eval does
        "q4": {"d": 1},  # not in the run: scores 0 (trec_eval -c)
    }
    run = {"q1": ["a", "b", "c"], "q2": ["z", "b"], "q3": ["z"]}
    scores = evaluate(run, qrels)
    ndcg_q1 = 1.5 / (1 + 1 / LOG2_3)
    ndcg_q2 = 1 / LOG2_3
    assert scores["ndcg10"] == pytest.approx((ndcg_q1 + ndcg_q2 + 0) / 3)
    assert scores["recall10"] == pytest.approx((1 + 1 + 0) / 3)
    assert scores["recall100"] == pytest.approx(2 / 3)
    assert scores["mrr10"] == pytest.approx((1 + 0.5 + 0) / 3)


def test_evaluate_needs_a_judged_query() -> None:
    with pytest.raises(ValueError):
        evaluate({}, {"q": {"a": 0}})


def test_percentile_matches_linear_interpolation() -> None:
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 50) == 25.0
    assert percentile(values, 95) == pytest.approx(38.5)
    assert percentile([5.0], 95) == 5.0
    assert percentile(list(range(101)), 95) == pytest.approx(95.0)
