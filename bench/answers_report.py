"""Renders the answers section of benchmarks.json as Markdown."""

from __future__ import annotations

from typing import Any

from bench.report import PER_MINUTE_TARGET_RATIO, fmt, table, verdict


def answers(data: dict[str, Any]) -> list[str]:
    """Evidence selection against whole chunks: what the model is shown and answers."""
    s = data.get("settings", {})
    lines = [
        f"{fmt(data.get('claims'))} SciFact training claims with gold evidence sentences, each "
        f"asked as *{data.get('question', '?')}* over SciFact ingested with the default "
        f"settings (chunks of {fmt(s.get('chunk_tokens'))} word pieces, overlap "
        f"{fmt(s.get('chunk_overlap'))}; {s.get('mode', '?')} retrieval, top "
        f"{fmt(s.get('top_k'))}). *Evidence in context*: a gold evidence sentence is "
        "contained in the quoted sources (lower-case letters and digits compared). *New*: "
        f'`rag.evidence = "{s.get("evidence", "?")}"` within '
        f"{fmt(s.get('evidence_tokens'))} tokens; *before*: whole chunks within "
        f"`rag.context_tokens` = {fmt(s.get('context_tokens_before'))}. Prompt tokens are the "
        f"system and user messages by the model's tokenizer (`{s.get('model', '?')}`); "
        "selection time is what `prepare` spends after retrieval.",
        "",
    ]
    paths = data.get("paths", {})
    new, before = paths.get("new", {}), paths.get("before", {})
    lines += table(
        ("measure", "new", "before", "new / before"),
        [
            (
                "evidence in context",
                fmt(data.get("evidence_in_context")),
                fmt(data.get("evidence_in_context_before")),
                fmt(data.get("evidence_in_context_ratio")),
            ),
            (
                "prompt tokens (mean)",
                fmt(data.get("prompt_tokens"), 0),
                fmt(data.get("prompt_tokens_before"), 0),
                _ratio(data.get("prompt_tokens"), data.get("prompt_tokens_before")),
            ),
            (
                "prompt tokens (max)",
                fmt(new.get("prompt_tokens_max")),
                fmt(before.get("prompt_tokens_max")),
                "—",
            ),
            (
                "citations per answer (mean)",
                fmt(new.get("citations_mean"), 1),
                fmt(before.get("citations_mean"), 1),
                "—",
            ),
            (
                "selection ms, p50 / p95",
                f"{fmt(new.get('selection_ms_p50'), 1)} / {fmt(new.get('selection_ms_p95'), 1)}",
                f"{fmt(before.get('selection_ms_p50'), 1)} / "
                f"{fmt(before.get('selection_ms_p95'), 1)}",
                "—",
            ),
        ],
    )
    lines += _selectors(data.get("selectors", []))
    if data.get("llm"):
        lines += _llm(data["llm"])
    else:
        lines += ["Not answered by the model in this run (`--answers-claims 0`).", ""]
    if data.get("models"):
        lines += _models(data)
    if data.get("askers"):
        lines += _askers(data)
    return lines


def _models(data: dict[str, Any]) -> list[str]:
    """The new path answered by other bundled models beside the default one."""
    default = data.get("llm", {})
    rows = [(default.get("model", "default"), default.get("new", {}), default)]
    for name, llm in data["models"].items():
        rows.append((llm.get("model", name), llm.get("new", {}), llm))
    lines = [
        "Other bundled models on the new path, the same claims (the first row is the model "
        "above); time to first token depends on the load average shown.",
        "",
    ]
    lines += table(
        (
            "model",
            "claims",
            "verdict accuracy (95 % interval)",
            "cited a gold document",
            "false abstention",
            "first token p50, s",
            "whole answer p50, s",
            "load average",
        ),
        [
            (
                f"`{name}`",
                fmt(figures.get("claims")),
                f"{fmt(figures.get('verdict_accuracy'))} ({_ci(figures)})",
                fmt(figures.get("cited_gold_doc")),
                fmt(figures.get("false_abstention")),
                fmt(figures.get("time_to_first_token_s_p50"), 2),
                fmt(figures.get("total_s_p50"), 2),
                fmt(run.get("load_avg_1m_mean"), 2),
            )
            for name, figures, run in rows
        ],
    )
    return lines


def _askers(data: dict[str, Any]) -> list[str]:
    runs = data["askers"]
    new, before = runs.get("new", {}), runs.get("before", {})
    lines = [
        f"Several people at once: {fmt(new.get('clients'))} askers over HTTP, each sending its "
        f"next claim when its answer is complete, {fmt(new.get('questions'))} claims, answers "
        "of at most 64 tokens, streamed; one `xnai serve` per path on the library above. "
        "*New* is the default configuration; *before* is whole chunks answered one at a time "
        f"by llama-cpp-python ({_settings(before.get('settings', {}))}). Both servers keep "
        "every request waiting (no refusal), so this measures throughput, not admission.",
        "",
    ]
    rows = []
    for label, key, digits in (
        ("answers per minute", "answers_per_minute", 1),
        ("answered / asked", None, 0),
        ("sources event p50, ms", "sources_first_ms_p50", 0),
        ("time to first token p50, s", "time_to_first_token_s_p50", 2),
        ("time to first token p95, s", "time_to_first_token_s_p95", 2),
        ("whole answer p50, s", "total_s_p50", 2),
    ):
        if key is None:
            rows.append(
                (
                    label,
                    *(
                        f"{fmt(r.get('answered'))} / {fmt(r.get('questions'))}"
                        for r in (new, before)
                    ),
                    "—",
                )
            )
            continue
        ratio = _ratio(new.get(key), before.get(key)) if key == "answers_per_minute" else "—"
        rows.append((label, fmt(new.get(key), digits), fmt(before.get(key), digits), ratio))
    lines += table(("measure", "new", "before", "new / before"), rows)
    target = PER_MINUTE_TARGET_RATIO
    lines += [
        f"Target: at least {fmt(target, 0)}x the answers per minute of the path before "
        f"({verdict(data.get('per_minute_ratio'), target)}).",
        "",
    ]
    return lines


def _settings(env: dict[str, str]) -> str:
    return ", ".join(
        f"`{k.removeprefix('XNAI_').replace('__', '.').lower()} = {v}`" for k, v in env.items()
    )


def _selectors(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    lines = [
        "Candidate selectors over the same retrieval: *dense* is the cosine of each sentence "
        "to the question by the library's embedder (sentences embedded in one batch), "
        "*lexical* BM25 over the retrieved sentences, *mixed* both scaled to [0, 1] and "
        "averaged; *neighbours* is the context taken on each side of a chosen sentence; "
        "*prior* is subtracted from a sentence's score (scaled to [0, 1]) per place its chunk "
        "ranked below the first. Quoted tokens include the quotation markup; scoring time is "
        "per question.",
        "",
    ]
    lines += table(
        (
            "scorer",
            "neighbours",
            "prior",
            "budget",
            "evidence in context",
            "quoted tokens",
            "scoring ms",
        ),
        [
            (
                r["scorer"],
                r["neighbours"],
                fmt(r.get("rank_prior"), 2),
                r["budget"],
                fmt(r["evidence_in_context"]),
                fmt(r["quoted_tokens_mean"], 0),
                fmt(r["scoring_ms_p50"], 1),
            )
            for r in rows
        ],
    )
    return lines


def _llm(llm: dict[str, Any]) -> list[str]:
    names = ["new", "before"] + [k for k in llm if k.startswith("sentences_")]
    paths = [llm.get(name, {}) for name in names]
    lines = [
        f"With the model (`{llm.get('model', '?')}`, in-process, max_tokens "
        f"{fmt(llm.get('max_tokens'))}) on {fmt(llm.get('claims'))} claims spread evenly over "
        "the file, every path per claim in rotating order; `sentences_N` is evidence "
        "selection within N tokens. Before each question the model answers an unrelated "
        "prompt with one token, so no question reuses another path's prompt prefix (the "
        "system prompt stays cached, as in a server). *Verdict*: the answer says yes for a "
        "supported claim, no for a contradicted one (95 % Wilson interval); always "
        "answering yes scores "
        f"{fmt(llm.get('always_yes_accuracy'))}. *False abstention*: the answer declined "
        "although a gold sentence was in the prompt (share of those claims). Load average "
        f"during the run: mean {fmt(llm.get('load_avg_1m_mean'), 2)}, max "
        f"{fmt(llm.get('load_avg_1m_max'), 2)} on 2 cores.",
        "",
    ]
    rows = []
    for label, key, digits in (
        ("verdict accuracy", "verdict_accuracy", 3),
        ("cited a gold document", "cited_gold_doc", 3),
        ("gold evidence in the prompt", "evidence_in_prompt", 3),
        ("false abstention", "false_abstention", 3),
        ("prompt tokens (mean)", "prompt_tokens_mean", 0),
        ("time to first token p50, s", "time_to_first_token_s_p50", 2),
        ("time to first token p95, s", "time_to_first_token_s_p95", 2),
        ("whole answer p50, s", "total_s_p50", 2),
    ):
        rows.append((label, *(fmt(p.get(key), digits) for p in paths)))
    rows.insert(1, ("verdict accuracy, 95 % interval", *(_ci(p) for p in paths)))
    rows.append(("verdicts (yes/no/abstain/unclear)", *(_verdicts(p) for p in paths)))
    for label in ("SUPPORT", "CONTRADICT"):
        rows.append(
            (
                f"verdicts on {label} claims",
                *(
                    _verdicts({"verdicts": p.get("verdicts_by_label", {}).get(label, {})})
                    for p in paths
                ),
            )
        )
    rows.append(
        (
            "yes precision (answers yes, label SUPPORT)",
            *(fmt(p.get("yes_precision")) for p in paths),
        )
    )
    lines += table(("measure", *names), rows)
    return lines


def _ci(figures: dict[str, Any]) -> str:
    low, high = figures.get("verdict_accuracy_ci95") or (None, None)
    return f"{fmt(low)} – {fmt(high)}"


def _verdicts(figures: dict[str, Any]) -> str:
    v = figures.get("verdicts", {})
    return " / ".join(fmt(v.get(k)) for k in ("yes", "no", "abstain", "unclear"))


def _ratio(a: float | None, b: float | None) -> str:
    return fmt(a / b) if a is not None and b else "—"
