"""The answers benchmark's judgements: evidence in context, verdicts, intervals, samples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from bench.answers import (
    Asked,
    Claim,
    answer_figures,
    is_correct,
    load_claims,
    measure,
    sample,
    shows_evidence,
    verdict,
    wilson,
)
from bench.answers_report import answers as render

from xnai.adapters.memory.llm import FakeChatModel
from xnai.services.knowledge import Source, sha256_bytes

CLAIM = Claim(
    "7",
    "Vitamin D lowers fracture risk.",
    "SUPPORT",
    {"123": ["Supplementation reduced hip fractures by 20% (95% CI, 0.7-0.9)."]},
)


def test_the_question_is_asked_as_a_user_would() -> None:
    assert CLAIM.question == "Is it true that Vitamin D lowers fracture risk?"


def test_evidence_is_compared_as_lower_case_letters_and_digits() -> None:
    assert shows_evidence(
        ["... supplementation REDUCED hip-fractures by 20 % (95% CI 0.7 0.9)"], CLAIM
    )
    assert shows_evidence(
        ["Supplementation reduced hip ", "fractures by 20% (95% CI, 0.7-0.9)."], CLAIM
    )
    assert not shows_evidence(["Supplementation reduced hip fractures."], CLAIM)
    assert not shows_evidence([], CLAIM)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Yes, vitamin D lowers the risk [1].", "yes"),
        ("No. The trial found no effect.", "no"),
        ("The library does not say.", "abstain"),
        ("The sources do not mention fractures.", "abstain"),
        ("No, the sources do not mention it.", "abstain"),
        ("This claim is not true according to source 2.", "no"),
        ("According to the sources, it is true that the risk falls.", "yes"),
        ("Vitamin D is a hormone.", "unclear"),
        ("", "unclear"),
    ],
)
def test_verdicts(text: str, expected: str) -> None:
    assert verdict(text) == expected


def test_correct_means_yes_for_support_and_no_for_contradict() -> None:
    assert is_correct("yes", "SUPPORT") and is_correct("no", "CONTRADICT")
    assert not is_correct("no", "SUPPORT") and not is_correct("abstain", "CONTRADICT")


def test_wilson_interval_matches_the_textbook_values() -> None:
    # Newcombe (1998), Statistics in Medicine 17:857, example: 81 of 263.
    low, high = wilson(81, 263)
    assert low == pytest.approx(0.2553, abs=1e-4) and high == pytest.approx(0.3662, abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)
    assert wilson(40, 40)[1] == pytest.approx(1.0)


def test_the_sample_is_spread_and_deterministic() -> None:
    claims = [Claim(str(i), "c", "SUPPORT", {}) for i in range(505)]
    picked = sample(claims, 40)
    assert len(picked) == 40 == len({c.id for c in picked})
    assert picked == sample(claims, 40) and picked[0].id == "0" and picked[-1].id == "492"
    assert sample(claims[:3], 40) == claims[:3]


def test_claims_are_read_from_the_jsonl_file(tmp_path: Path) -> None:
    row = {"id": 7, "claim": CLAIM.claim, "label": "SUPPORT", "evidence": CLAIM.evidence}
    (tmp_path / "claims-train.jsonl").write_text(json.dumps(row) + "\n\n", encoding="utf-8")
    assert load_claims(tmp_path) == [CLAIM]


def asked(verdict_: str, shown: bool, first: float | None = 1.0) -> Asked:
    return Asked(CLAIM, "new", "text", verdict_, verdict_ == "yes", shown, shown, 500, first, 2.0)


def test_answer_figures_count_false_abstentions_among_prompts_with_evidence() -> None:
    figures = answer_figures(
        [
            asked("yes", True),
            asked("abstain", True),
            asked("abstain", False),
            asked("no", True, None),
        ]
    )
    assert figures["verdict_accuracy"] == 0.25
    assert figures["false_abstention"] == pytest.approx(1 / 3)
    assert figures["verdicts"] == {"yes": 1, "no": 1, "abstain": 2, "unclear": 0}
    assert figures["time_to_first_token_s_p50"] == 1.0
    low, high = figures["verdict_accuracy_ci95"]
    assert low < 0.25 < high


def test_the_report_renders_with_and_without_the_model() -> None:
    data = {
        "claims": 2,
        "question": "Is it true that <claim>?",
        "settings": {"evidence": "sentences", "evidence_tokens": 400},
        "evidence_in_context": 0.9,
        "evidence_in_context_before": 0.92,
        "paths": {"new": {"selection_ms_p50": 12.0}, "before": {}},
        "selectors": [
            {
                "scorer": "mixed",
                "neighbours": 1,
                "rank_prior": 0.1,
                "budget": 400,
                "evidence_in_context": 0.9,
                "quoted_tokens_mean": 380.0,
                "scoring_ms_p50": 30.0,
            }
        ],
    }
    text = "\n".join(render(data))
    assert "| evidence in context | 0.900 | 0.920 |" in text
    assert "| mixed | 1 | 0.10 | 400 | 0.900 | 380 | 30.0 |" in text
    assert "Not answered by the model" in text
    data["llm"] = {"claims": 2, "new": answer_figures([asked("yes", True)]), "before": {}}
    text = "\n".join(render(data))
    assert "| verdict accuracy | 1.000 | — |" in text


def test_the_section_runs_end_to_end_on_the_fakes(make_container: Any) -> None:
    c = make_container()
    texts = {
        "1": "Pumps. The coolant pump runs at 1450 rpm. It was installed in 2019.",
        "2": "Valves. The relief valve opens at 12 bar. Its body is brass.",
    }
    sources = [
        Source(f"scifact:{i}", sha256_bytes(t.encode()), len(t), f"T{i}", t, "text/plain", "b", "1")
        for i, t in texts.items()
    ]
    c.kb.ingest(sources, user="bench")
    claims = [
        Claim(
            "a",
            "The coolant pump runs at 1450 rpm.",
            "SUPPORT",
            {"1": ["The coolant pump runs at 1450 rpm."]},
        ),
        Claim(
            "b",
            "The relief valve opens at 3 bar.",
            "CONTRADICT",
            {"2": ["The relief valve opens at 12 bar."]},
        ),
    ]
    out = measure(
        c,
        claims,
        llm_claims=2,
        max_tokens=16,
        extra_budgets=(40,),
        other_models=[("other", lambda: FakeChatModel(context_size=2048))],
        log=lambda _: None,
        settle=lambda: None,
        load_average=lambda: 0.5,
    )
    assert out["evidence_in_context"] == out["evidence_in_context_before"] == 1.0
    assert set(out["paths"]) == {"new", "before", "sentences_40"}
    assert {r["scorer"] for r in out["selectors"]} == {"dense", "lexical", "mixed"}
    llm = out["llm"]
    assert llm["claims"] == 2 and len(llm["answers"]) == 6
    assert out["cited_gold_doc"] == 1.0  # the fake model cites its first source
    other = out["models"]["other"]
    assert other["claims"] == 2 and {a["path"] for a in other["answers"]} == {"new"}
    text = "\n".join(render(out))
    assert "sentences_40" in text and "| verdict accuracy |" in text
    assert "Other bundled models" in text


def test_a_model_that_says_yes_to_everything_shows_in_the_figures() -> None:
    supported = Claim("s", "Supported.", "SUPPORT", {"1": ["x"]})
    contradicted = Claim("c", "Contradicted.", "CONTRADICT", {"1": ["x"]})

    def said_yes(claim: Claim) -> Asked:
        return Asked(claim, "new", "Yes.", "yes", claim.label == "SUPPORT", True, True, 9, 1.0, 2.0)

    figures = answer_figures([said_yes(supported)] * 3 + [said_yes(contradicted)])
    assert figures["verdict_accuracy"] == 0.75  # as high as the share of supported claims
    assert figures["yes_precision"] == 0.75
    assert figures["verdicts_by_label"]["CONTRADICT"] == {
        "yes": 1,
        "no": 0,
        "abstain": 0,
        "unclear": 0,
    }
