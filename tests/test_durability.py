"""SIGKILL an ingest at random moments; after every restart index, database and manifest agree."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import make_settings
from xnai.adapters.storage.fsutil import TMP_MARK
from xnai.bootstrap import build
from xnai.services.audit import Auditor
from xnai.services.consistency import check

pytestmark = pytest.mark.slow

WORDS = [
    "reactor",
    "turbine",
    "coolant",
    "valve",
    "pressure",
    "sensor",
    "audit",
    "ledger",
    "invoice",
    "policy",
    "vendor",
    "contract",
    "clause",
    "warranty",
    "retention",
    "backup",
    "archive",
    "cipher",
    "token",
    "session",
]


def write_doc(path: Path, rng: random.Random) -> None:
    sections = []
    for s in range(rng.randint(2, 5)):
        paras = [" ".join(rng.choices(WORDS, k=rng.randint(20, 60))) + "." for _ in range(3)]
        sections.append(f"## Section {s} {rng.choice(WORDS)}\n\n" + "\n\n".join(paras))
    path.write_text(f"# {path.stem}\n\n" + "\n\n".join(sections) + "\n", encoding="utf-8")


def cli_env(data_dir: Path, cfg: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "XNAI_CONFIG": str(cfg),
            "XNAI_STORAGE__DATA_DIR": str(data_dir),
            "XNAI_MODELS__EMBEDDER_BACKEND": "fake",
            "XNAI_MODELS__LLM_BACKEND": "fake",
            "XNAI_INGEST__CHUNK_TOKENS": "60",
            "XNAI_INGEST__CHUNK_OVERLAP": "10",
            "XNAI_INGEST__COMMIT_EVERY_CHUNKS": "4",
        }
    )
    return env


def run_ingest(corpus: Path, env: dict[str, str], kill_after: float | None) -> int:
    proc = subprocess.Popen(
        [sys.executable, "-m", "xnai", "ingest", str(corpus)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if kill_after is None:
        return proc.wait(timeout=300)
    try:
        return proc.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        return proc.wait()


def assert_consistent(data_dir: Path) -> dict[str, str]:
    container = build(make_settings(data_dir))
    try:
        container.startup.open_index()  # what a restarted process does first
        assert check(container.kb) == []
        leftovers = [p for p in data_dir.rglob("*") if p.name.startswith(TMP_MARK)]
        assert leftovers == []
        return {d.source: d.sha256 for d in container.kb.snapshot.documents.values()}
    finally:
        container.close()


def test_sigkill_during_ingest_never_corrupts(tmp_path: Path) -> None:
    rng = random.Random(20261126)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    docs = [corpus / f"doc{i:02d}.md" for i in range(30)]
    for path in docs:
        write_doc(path, rng)
    cfg = tmp_path / "empty.toml"
    cfg.write_text("")
    data_dir = tmp_path / "data"
    env = cli_env(data_dir, cfg)

    started = time.perf_counter()
    assert run_ingest(corpus, env, None) == 0
    full = time.perf_counter() - started
    assert_consistent(data_dir)

    kills = rounds = 0
    while kills < 20:
        rounds += 1
        assert rounds <= 60, f"only {kills} kills landed in {rounds} rounds"
        for path in rng.sample(docs, 12):  # enough changes for several commits
            write_doc(path, rng)
        returncode = run_ingest(corpus, env, rng.uniform(0.3, 1.0) * full)
        kills += returncode == -signal.SIGKILL
        committed = assert_consistent(data_dir)
        assert set(committed) <= {str(p.resolve()) for p in docs}

    assert run_ingest(corpus, env, None) == 0
    final = assert_consistent(data_dir)
    import hashlib

    expected = {str(p.resolve()): hashlib.sha256(p.read_bytes()).hexdigest() for p in docs}
    assert final == expected


def committed_generation(data_dir: Path) -> int:
    """The generation ``CURRENT`` names (0 before the first commit or mid-rename)."""
    try:
        return int((data_dir / "index" / "CURRENT").read_text(encoding="ascii").strip())
    except (FileNotFoundError, ValueError):
        return 0


def test_killed_ingest_audits_every_committed_document(tmp_path: Path) -> None:
    rng = random.Random(20261207)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(60):
        write_doc(corpus / f"doc{i:02d}.md", rng)
    cfg = tmp_path / "empty.toml"
    cfg.write_text("")
    data_dir = tmp_path / "data"
    proc = subprocess.Popen(
        [sys.executable, "-m", "xnai", "ingest", str(corpus)],
        env=cli_env(data_dir, cfg),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while committed_generation(data_dir) < 3 and proc.poll() is None:
        assert time.monotonic() < deadline, "the ingest made no progress"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the ingest ended before it could be killed"

    container = build(make_settings(data_dir))
    try:
        container.startup.open_index()
        assert isinstance(container.audit, Auditor)
        committed = {d.source for d in container.kb.snapshot.documents.values()}
        generation = container.kb.snapshot.generation
        assert 0 < len(committed) < 60 and generation >= 3
        commits = [e for e in container.audit.events if e["action"] == "commit"]
        done = [e for e in commits if e["details"]["generation"] <= generation]
        assert [e["details"]["generation"] for e in done] == list(range(1, generation + 1))
        assert sorted(s for e in done for s in e["details"]["added"]) == sorted(committed)
        # Written first, the event of a batch killed before its commit point may be there
        # too: at most one, for the generation that never came.
        assert [e["details"]["generation"] for e in commits[len(done) :]] in ([], [generation + 1])
        assert container.audit.verify().ok
    finally:
        container.close()
