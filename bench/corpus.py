"""The benchmark corpus: SciFact in BEIR layout, or the repository's own docs as a fallback."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from xnai.services.knowledge import Source

SOURCE_PREFIX = "scifact:"


@dataclass
class Corpus:
    """Documents to ingest, and (for SciFact) the queries and their judgments."""

    name: str
    docs: list[tuple[str, str, str]]  # (id, title, text as indexed)
    queries: dict[str, str] = field(default_factory=dict)
    qrels: dict[str, dict[str, int]] = field(default_factory=dict)
    mime: str = "text/plain"

    def sources(self) -> Iterator[Source]:
        """The documents as ``Source`` records, one per document."""
        for doc_id, title, text in self.docs:
            data = text.encode("utf-8")
            yield Source(
                source=SOURCE_PREFIX + doc_id if self.name.startswith("scifact") else doc_id,
                sha256=hashlib.sha256(data).hexdigest(),
                size=len(data),
                title=title,
                text=text,
                mime=self.mime,
                loader="bench",
                loader_version="1",
            )


def load_scifact(directory: Path, *, quick: bool = False) -> Corpus:
    """SciFact's corpus with the training queries; ``quick``: 100 queries, 500 documents."""
    docs: list[tuple[str, str, str]] = []
    with (directory / "corpus.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                rec = json.loads(line)
                # BEIR's convention for one-field models: title + " " + text.
                docs.append((str(rec["_id"]), rec["title"], f"{rec['title']} {rec['text']}"))
    queries: dict[str, str] = {}
    with (directory / "queries-train.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                rec = json.loads(line)
                queries[str(rec["_id"])] = rec["text"]
    qrels: dict[str, dict[str, int]] = {}
    with (directory / "qrels-train.tsv").open(encoding="utf-8", newline="") as rows:
        reader = csv.reader(rows, delimiter="\t")
        next(reader)  # header
        for qid, doc_id, score in reader:
            qrels.setdefault(qid, {})[doc_id] = int(score)
    qrels = {qid: judged for qid, judged in qrels.items() if qid in queries}
    if quick:
        return _subset(docs, queries, qrels, n_queries=100, n_docs=500)
    return Corpus("scifact-train", docs, queries, qrels)


def _subset(
    docs: list[tuple[str, str, str]],
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    *,
    n_queries: int,
    n_docs: int,
) -> Corpus:
    """The first judged queries, their relevant documents, topped up in corpus order."""
    chosen = [qid for qid in queries if qid in qrels][:n_queries]
    needed = {doc for qid in chosen for doc in qrels[qid]}
    by_id = {d[0]: d for d in docs}
    picked = [by_id[d] for d in sorted(needed) if d in by_id]
    for doc in docs:
        if len(picked) >= n_docs:
            break
        if doc[0] not in needed:
            picked.append(doc)
    return Corpus(
        "scifact-train-quick",
        picked,
        {qid: queries[qid] for qid in chosen},
        {qid: qrels[qid] for qid in chosen},
    )


def load_repo_docs(root: Path) -> Corpus:
    """The repository's Markdown docs: a small corpus when SciFact is not available."""
    docs = []
    for path in sorted((root / "docs").rglob("*.md")):
        text = path.read_text(encoding="utf-8", errors="replace")
        if text.strip():
            rel = path.relative_to(root).as_posix()
            docs.append((rel, path.stem, text))
    return Corpus("repo-docs", docs, mime="text/markdown")
