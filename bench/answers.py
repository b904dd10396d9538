"""The answers benchmark: what the model is shown, and what it answers, for SciFact's
labelled claims, asked as "Is it true that <claim>?".

Two paths in one run over the same library and the same retrieval: evidence selection
(``rag.evidence = "sentences"``, the default) and whole chunks (``"chunks"``, the packing
answers used before). Without a model: evidence in context (a gold evidence sentence is
contained in the quoted text, compared as lower-case letters and digits), prompt tokens
and selection time, over every claim, plus each candidate selector at several budgets.
With the model, over a deterministic sample: the verdict (yes for SUPPORT, no for
CONTRADICT) with a Wilson 95 % interval, the cited gold document, false abstentions, the
time to the first token and to the whole answer.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.metrics import percentile

CLAIMS_FILE = "claims-train.jsonl"
BUDGETS = (300, 400, 500)
LARGER_BUDGETS = (600, 700, 800)
RANK_PRIOR = 0.1  # the selector's default (EvidencePolicy.rank_prior)
SELECTORS = ("dense", "lexical", "mixed")
NEIGHBOURS = (0, 1)

_LETTERS_DIGITS = re.compile(r"[^a-z0-9]")
# An answer that declines: "the library does not say", "the sources do not mention ...".
_ABSTAIN = re.compile(
    r"\b(?:does|do|did)\s+not\s+(?:say|state|mention|contain|provide|specify|address|"
    r"discuss|include|support\s+or)|\bnot\s+(?:enough|sufficient)\s+information|"
    r"\bcannot\s+(?:be\s+)?(?:determined?|answer|say|confirm)|\bno\s+(?:information|"
    r"mention)\b|\bunable\s+to\s+(?:determine|answer)|could\s+not\s+find",
    re.IGNORECASE,
)
_YES = re.compile(r"^\W*(?:yes|true|correct|indeed|it\s+is\s+true)\b", re.IGNORECASE)
_NO = re.compile(r"^\W*(?:no|false|incorrect|not\s+true|it\s+is\s+not\s+true)\b", re.IGNORECASE)
_NO_ANYWHERE = re.compile(
    r"\b(?:is|are|was|were)\s+not\s+(?:true|correct|supported)|\bfalse\b|\bincorrect\b",
    re.IGNORECASE,
)
_YES_ANYWHERE = re.compile(r"\b(?:is|are)\s+(?:true|correct)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Claim:
    """One labelled SciFact claim with the gold evidence sentences of each document."""

    id: str
    claim: str
    label: str  # SUPPORT or CONTRADICT
    evidence: dict[str, list[str]]

    @property
    def question(self) -> str:
        """The claim asked as a user would."""
        return f"Is it true that {self.claim.strip().rstrip('.')}?"


def load_claims(directory: Path) -> list[Claim]:
    """``claims-train.jsonl`` of the SciFact directory."""
    claims = []
    with (directory / CLAIMS_FILE).open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                r = json.loads(line)
                evidence = {str(k): list(v) for k, v in r["evidence"].items()}
                claims.append(Claim(str(r["id"]), r["claim"], r["label"], evidence))
    return claims


def letters_digits(text: str) -> str:
    """``text`` as compared: lower-case letters and digits only."""
    return _LETTERS_DIGITS.sub("", text.lower())


def shows_evidence(texts: Iterable[str], claim: Claim) -> bool:
    """Whether a gold evidence sentence is contained in the text the model is shown."""
    shown = letters_digits(" ".join(texts))
    return any(
        letters_digits(s) in shown for sentences in claim.evidence.values() for s in sentences
    )


def sample(claims: Sequence[Claim], n: int) -> list[Claim]:
    """``n`` claims spread evenly over the file (deterministic)."""
    if n >= len(claims):
        return list(claims)
    return [claims[i * len(claims) // n] for i in range(n)]


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion (95 % by default)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    denominator = 1 + z * z / n
    return ((centre - margin) / denominator, (centre + margin) / denominator)


def verdict(answer: str) -> str:
    """``yes``, ``no``, ``abstain`` (the answer declines) or ``unclear``."""
    text = answer.strip()
    if _YES.search(text):
        return "yes"
    if _NO.search(text) and not _ABSTAIN.search(text):
        return "no"
    if _ABSTAIN.search(text):
        return "abstain"
    if _NO_ANYWHERE.search(text):
        return "no"
    if _YES_ANYWHERE.search(text):
        return "yes"
    return "unclear"


def is_correct(answer_verdict: str, label: str) -> bool:
    """Yes for a supported claim, no for a contradicted one."""
    return (answer_verdict, label) in {("yes", "SUPPORT"), ("no", "CONTRADICT")}


# -- without a model: what is shown ----------------------------------------------------------


def context_figures(
    paths: dict[str, Any], claims: Sequence[Claim], count: Callable[[str], int], scope: Any
) -> dict[str, Any]:
    """Per path, over every claim: evidence in context, prompt and context tokens, and the
    time ``prepare`` spends after retrieval (selection and prompt building)."""
    out: dict[str, Any] = {}
    for name, service in paths.items():
        shown, prompt_tokens, context_tokens, select_ms, spans = 0, [], [], [], []
        for claim in claims:
            started = time.perf_counter()
            prepared = service.prepare(claim.question, scope=scope)
            total_ms = (time.perf_counter() - started) * 1000
            select_ms.append(total_ms - prepared.retrieval_ms)
            shown += shows_evidence((c.text for c in prepared.citations), claim)
            prompt_tokens.append(sum(count(m.content) for m in prepared.messages))
            context_tokens.append(sum(count(c.text) for c in prepared.citations))
            spans.append(len(prepared.citations))
        out[name] = {
            "evidence_in_context": shown / len(claims),
            "prompt_tokens_mean": statistics.mean(prompt_tokens),
            "prompt_tokens_p50": percentile(prompt_tokens, 50),
            "prompt_tokens_max": max(prompt_tokens),
            "quoted_text_tokens_mean": statistics.mean(context_tokens),
            "citations_mean": statistics.mean(spans),
            "selection_ms_p50": percentile(select_ms, 50),
            "selection_ms_p95": percentile(select_ms, 95),
        }
    return out


class TimedScorer:
    """A scorer that remembers its scores per question (so budgets and neighbours can be
    compared without scoring again) and the time each first scoring took."""

    def __init__(self, scorer: Callable[[str, Sequence[str]], Sequence[float]]) -> None:
        self.scorer = scorer
        self.memo: dict[tuple[str, tuple[str, ...]], list[float]] = {}
        self.ms: list[float] = []

    def __call__(self, question: str, sentences: Sequence[str]) -> list[float]:
        key = (question, tuple(sentences))
        if key not in self.memo:
            started = time.perf_counter()
            self.memo[key] = list(self.scorer(question, sentences))
            self.ms.append((time.perf_counter() - started) * 1000)
        return self.memo[key]


def candidates() -> list[tuple[str, int, float, int]]:
    """The selectors compared, as (scorer, neighbours, rank prior, budget): every scorer with
    and without neighbours at each budget, the mixed scorer without the retrieval-order
    prior, and the chosen one at larger budgets."""
    rows = [
        (scorer, neighbours, RANK_PRIOR, budget)
        for scorer in SELECTORS
        for neighbours in NEIGHBOURS
        for budget in BUDGETS
    ]
    rows += [("mixed", 1, 0.0, budget) for budget in BUDGETS]
    rows += [("mixed", 1, RANK_PRIOR, budget) for budget in LARGER_BUDGETS]
    return rows


def selector_grid(
    retrieved: Sequence[tuple[Claim, list[Any]]],
    scorers: dict[str, Callable[[str, Sequence[str]], Sequence[float]]],
    count: Callable[[str], int],
    markup: Callable[[Any], int],
) -> list[dict[str, Any]]:
    """Every candidate selector over the same retrieved hits: evidence in context, quoted
    tokens (text and markup) and time per question."""
    from xnai.services.evidence import EvidencePolicy, EvidenceSelector

    timed = {name: TimedScorer(base) for name, base in scorers.items()}
    rows = []
    for name, neighbours, prior, budget in candidates():
        scorer = timed[name]
        policy = EvidencePolicy(neighbours=neighbours, rank_prior=prior)
        selector = EvidenceSelector(scorer, count, policy, markup=markup)
        shown, quoted, choose_ms = 0, [], []
        for claim, hits in retrieved:
            scorer(claim.question, [x.text for x in selector.sentences(hits)])  # untimed
            started = time.perf_counter()
            spans = selector.select(claim.question, hits, budget)
            choose_ms.append((time.perf_counter() - started) * 1000)
            shown += shows_evidence((h.chunk.text for h in spans), claim)
            quoted.append(sum(count(h.chunk.text) + markup(h) for h in spans))
        rows.append(
            {
                "scorer": name,
                "neighbours": neighbours,
                "rank_prior": prior,
                "budget": budget,
                "evidence_in_context": shown / len(retrieved),
                "quoted_tokens_mean": statistics.mean(quoted),
                "scoring_ms_p50": percentile(scorer.ms, 50),
                "choosing_ms_p50": percentile(choose_ms, 50),
            }
        )
    return rows


# -- with a model: what is answered ------------------------------------------------------------


@dataclass
class Asked:
    """One claim answered on one path."""

    claim: Claim
    path: str
    text: str
    verdict: str
    correct: bool
    evidence_shown: bool
    cited_gold: bool
    prompt_tokens: int
    first_token_s: float | None
    total_s: float


def ask(
    service: Any,
    claim: Claim,
    path: str,
    *,
    scope: Any,
    max_tokens: int,
    count: Callable[[str], int],
    corpus_id: Callable[[str], str],
) -> Asked:
    """Ask one claim through ``service`` (prepare, then stream) and judge the answer."""
    from xnai.services.answer import Done, Token

    started = time.perf_counter()
    prepared = service.prepare(claim.question, scope=scope, max_tokens=max_tokens)
    first: float | None = None
    answer = None
    for event in service.stream(prepared):
        if isinstance(event, Token) and first is None and event.text.strip():
            first = time.perf_counter() - started
        elif isinstance(event, Done):
            answer = event.answer
    total = time.perf_counter() - started
    assert answer is not None
    said = verdict(answer.text)
    return Asked(
        claim=claim,
        path=path,
        text=answer.text,
        verdict=said,
        correct=is_correct(said, claim.label),
        evidence_shown=shows_evidence((c.text for c in prepared.citations), claim),
        cited_gold=any(corpus_id(c.doc_id) in claim.evidence for c in answer.citations),
        prompt_tokens=sum(count(m.content) for m in prepared.messages),
        first_token_s=first,
        total_s=total,
    )


def answer_figures(asked: Sequence[Asked]) -> dict[str, Any]:
    """Verdict accuracy (Wilson 95 %), cited gold document, false abstentions and timings."""
    n = len(asked)
    correct = sum(a.correct for a in asked)
    shown = [a for a in asked if a.evidence_shown]
    false_abstentions = sum(a.verdict == "abstain" for a in shown)
    firsts = [a.first_token_s for a in asked if a.first_token_s is not None]
    totals = [a.total_s for a in asked]
    low, high = wilson(correct, n)
    return {
        "claims": n,
        "verdict_accuracy": correct / n if n else None,
        "verdict_accuracy_ci95": [low, high],
        "verdicts": {v: sum(a.verdict == v for a in asked) for v in _VERDICTS},
        # Per label, so that a model that says yes to everything shows as such: the share of
        # supported claims answered yes, and of contradicted claims answered yes (wrongly).
        "verdicts_by_label": {
            label: {
                v: sum(a.verdict == v for a in asked if a.claim.label == label) for v in _VERDICTS
            }
            for label in ("SUPPORT", "CONTRADICT")
        },
        "yes_precision": _share(
            sum(a.correct for a in asked if a.verdict == "yes"),
            sum(a.verdict == "yes" for a in asked),
        ),
        "cited_gold_doc": sum(a.cited_gold for a in asked) / n if n else None,
        "evidence_in_prompt": len(shown) / n if n else None,
        # Share of the claims whose prompt held a gold sentence that got "does not say".
        "false_abstention": false_abstentions / len(shown) if shown else None,
        "false_abstentions": false_abstentions,
        "prompt_tokens_mean": statistics.mean(a.prompt_tokens for a in asked) if n else None,
        "time_to_first_token_s_p50": percentile(firsts, 50) if firsts else None,
        "time_to_first_token_s_p95": percentile(firsts, 95) if firsts else None,
        "total_s_p50": percentile(totals, 50) if totals else None,
        "total_s_p95": percentile(totals, 95) if totals else None,
    }


_VERDICTS = ("yes", "no", "abstain", "unclear")


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def always_yes(claims: Sequence[Claim]) -> float:
    """The accuracy of answering yes to everything (the share of supported claims)."""
    return sum(c.label == "SUPPORT" for c in claims) / len(claims) if claims else 0.0


def chunk_policy(policy: Any) -> Any:
    """``policy`` with today's packing: whole chunks within ``context_tokens``."""
    return replace(policy, evidence="chunks")


# -- the section ---------------------------------------------------------------------------------


def measure(
    c: Any,
    claims: Sequence[Claim],
    *,
    llm_claims: int,
    max_tokens: int,
    extra_budgets: Sequence[int] = (),
    other_models: Sequence[tuple[str, Callable[[], Any]]] = (),
    log: Callable[[str], None],
    settle: Callable[[], None],
    load_average: Callable[[], float | None],
) -> dict[str, Any]:
    """The whole section over container ``c`` (SciFact ingested with default settings)."""
    from xnai.bootstrap.wiring import answer_policy
    from xnai.domain.access import AccessScope

    scope = AccessScope.everything()
    policy = answer_policy(c.settings)
    paths = _paths(c, policy, extra_budgets)
    count = c.model.count_tokens  # the model's own tokenizer (loads the model)
    log(f"answers: {len(claims)} claims, what the model is shown on each path")
    settle()
    shown = context_figures(paths, claims, count, scope)
    new, before = shown["new"], shown["before"]
    out: dict[str, Any] = {
        "claims": len(claims),
        "question": "Is it true that <claim>?",
        "settings": {
            "top_k": policy.top_k,
            "mode": policy.mode.value,
            "evidence": policy.evidence,
            "evidence_tokens": policy.evidence_tokens,
            "context_tokens_before": policy.context_tokens,
            "chunk_tokens": c.settings.ingest.chunk_tokens,
            "chunk_overlap": c.settings.ingest.chunk_overlap,
            "model": c.model.name,
        },
        "evidence_in_context": new["evidence_in_context"],
        "evidence_in_context_before": before["evidence_in_context"],
        "evidence_in_context_ratio": _ratio(
            new["evidence_in_context"], before["evidence_in_context"]
        ),
        "prompt_tokens": new["prompt_tokens_mean"],
        "prompt_tokens_before": before["prompt_tokens_mean"],
        "selection_ms_p50": new["selection_ms_p50"],
        "selection_ms_p95": new["selection_ms_p95"],
        "selection_ms_p50_before": before["selection_ms_p50"],
        "paths": shown,
    }
    log(
        f"answers: evidence in context {new['evidence_in_context']:.3f} (before "
        f"{before['evidence_in_context']:.3f}); prompt tokens {new['prompt_tokens_mean']:.0f} "
        f"(before {before['prompt_tokens_mean']:.0f}); selection p50 "
        f"{new['selection_ms_p50']:.1f} ms"
    )
    out["selectors"] = _selectors(c, policy, claims, count, scope, log)
    if llm_claims > 0:
        out["llm"] = _with_model(
            c,
            c.model,
            paths,
            claims,
            llm_claims,
            max_tokens,
            count,
            scope,
            log,
            settle,
            load_average,
        )
        for key in ("verdict_accuracy", "cited_gold_doc", "false_abstention"):
            out[key] = out["llm"]["new"][key]
            out[f"{key}_before"] = out["llm"]["before"][key]
        out["verdict_accuracy_ci95"] = out["llm"]["new"]["verdict_accuracy_ci95"]
        out["verdict_accuracy_before_ci95"] = out["llm"]["before"]["verdict_accuracy_ci95"]
        for key in ("time_to_first_token_s_p50", "total_s_p50"):
            out[key] = out["llm"]["new"][key]
            out[f"{key}_before"] = out["llm"]["before"][key]
        out["models"] = {
            name: _other_model(
                c, policy, make, claims, llm_claims, max_tokens, scope, log, settle, load_average
            )
            for name, make in other_models
        }
    return out


def _other_model(
    c: Any,
    policy: Any,
    make: Callable[[], Any],
    claims: Sequence[Claim],
    n: int,
    max_tokens: int,
    scope: Any,
    log: Callable[[str], None],
    settle: Callable[[], None],
    load_average: Callable[[], float | None],
) -> dict[str, Any]:
    """The new path answered by another model (loaded by ``make``), on the same sample."""
    from xnai.services.answer import AnswerService

    model = make()
    try:
        path = AnswerService(c.retriever, model, replace(policy, evidence="sentences"))
        return _with_model(
            c,
            model,
            {"new": path},
            claims,
            n,
            max_tokens,
            model.count_tokens,
            scope,
            log,
            settle,
            load_average,
        )
    finally:
        close = getattr(model, "close", None)  # the local backends free their memory
        if close is not None:
            close()


def _paths(c: Any, policy: Any, extra_budgets: Sequence[int]) -> dict[str, Any]:
    """The new path (the configured policy), today's packing, and the new path at other
    budgets, over one model without the service's guards (a deadline would cut answers
    short on a busy machine)."""
    from xnai.services.answer import AnswerService

    paths = {
        "new": AnswerService(c.retriever, c.model, replace(policy, evidence="sentences")),
        "before": AnswerService(c.retriever, c.model, chunk_policy(policy)),
    }
    for budget in extra_budgets:
        other = replace(policy, evidence="sentences", evidence_tokens=budget)
        paths[f"sentences_{budget}"] = AnswerService(c.retriever, c.model, other)
    return paths


def _selectors(
    c: Any,
    policy: Any,
    claims: Sequence[Claim],
    count: Callable[[str], int],
    scope: Any,
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    """The candidate selectors over the same retrieval (behind the same relevance gate)."""
    from xnai.services.answer import is_relevant, source_markup
    from xnai.services.evidence import dense_scorer, lexical_scores, mixed_scorer

    log("answers: candidate selectors")
    retrieved = []
    for claim in claims:
        hits = c.retriever.search(claim.question, mode=policy.mode, top_k=policy.top_k, scope=scope)
        retrieved.append((claim, hits if is_relevant(hits, policy.min_score) else []))
    scorers = {
        "dense": dense_scorer(c.embedder),
        "lexical": lexical_scores,
        "mixed": mixed_scorer(c.embedder),
    }
    rows = selector_grid(retrieved, scorers, count, lambda h: count(source_markup(h.title)))
    for r in rows:
        log(
            f"  {r['scorer']:8} neighbours {r['neighbours']} prior {r['rank_prior']:.2f} budget "
            f"{r['budget']}: evidence "
            f"{r['evidence_in_context']:.3f}, {r['quoted_tokens_mean']:.0f} tokens, scoring "
            f"{r['scoring_ms_p50']:.1f} ms"
        )
    return rows


def _with_model(
    c: Any,
    model: Any,
    paths: dict[str, Any],
    claims: Sequence[Claim],
    n: int,
    max_tokens: int,
    count: Callable[[str], int],
    scope: Any,
    log: Callable[[str], None],
    settle: Callable[[], None],
    load_average: Callable[[], float | None],
) -> dict[str, Any]:
    """Every path answers the same sample of claims, in rotating order."""
    corpus_ids = {
        d.doc_id: d.source.removeprefix("scifact:") for d in c.kb.snapshot.documents.values()
    }
    chosen = sample(claims, n)
    spare = next((cl for cl in claims if cl not in chosen), chosen[0])

    def one(claim: Claim, path: str) -> Asked:
        _flush(model)
        return ask(
            paths[path],
            claim,
            path,
            scope=scope,
            max_tokens=max_tokens,
            count=count,
            corpus_id=lambda d: corpus_ids.get(d, d),
        )

    settle()
    log(f"answers: warming up {model.name}")
    one(spare, "new")
    asked: dict[str, list[Asked]] = {path: [] for path in paths}
    names = list(paths)
    loads: list[float] = []
    started = time.perf_counter()
    for i, claim in enumerate(chosen):
        for path in names[i % len(names) :] + names[: i % len(names)]:  # rotating order
            a = one(claim, path)
            asked[path].append(a)
            log(
                f"  {i + 1}/{len(chosen)} {path:6} {claim.label:10} -> {a.verdict:8} "
                f"TTFT {a.first_token_s or 0:.1f} s, {a.prompt_tokens} prompt tokens"
            )
        if (load := load_average()) is not None:
            loads.append(load)
    out: dict[str, Any] = {
        "claims": len(chosen),
        "max_tokens": max_tokens,
        "model": model.name,
        "seconds": time.perf_counter() - started,
        "always_yes_accuracy": always_yes(chosen),
        "load_avg_1m_mean": statistics.mean(loads) if loads else None,
        "load_avg_1m_max": max(loads) if loads else None,
    }
    for path, rows in asked.items():
        out[path] = answer_figures(rows)
    out["answers"] = [
        {
            "claim": a.claim.id,
            "path": a.path,
            "label": a.claim.label,
            "verdict": a.verdict,
            "evidence_shown": a.evidence_shown,
            "cited_gold": a.cited_gold,
            "first_token_s": a.first_token_s,
            "text": a.text[:300],
        }
        for path in names
        for a in asked[path]
    ]
    return out


def _flush(model: Any) -> None:
    """A one-token answer to an unrelated prompt: the next question then shares only the
    system prompt with what the model holds in its KV cache, as in a server where each
    question differs from the last (a prefix shared with the previous path's prompt would
    flatter whichever path goes second)."""
    from xnai.domain.models import ChatMessage
    from xnai.services.answer import SYSTEM_PROMPT

    messages = (ChatMessage("system", SYSTEM_PROMPT), ChatMessage("user", "Say OK."))
    for _ in model.stream(messages, max_tokens=1):
        pass


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None
