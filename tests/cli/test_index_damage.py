"""Damaged index files on the command line: verify names them, every other command stops
with one ``error:`` line and exit status 2, and ``xnai index rebuild`` repairs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.cli.output import plain
from tests.index_damage import generation_dir, overwrite_4k, truncate
from xnai.cli.main import app

runner = CliRunner()

TOPICS = ["turbines", "glaciers", "marmosets", "lighthouses", "volcanoes", "orchards"]


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture
def library(env: Path, tmp_path: Path) -> Path:
    """Six ingested documents (the vector file is then larger than 4 KiB in plain)."""
    lib = tmp_path / "lib"
    lib.mkdir()
    for topic in TOPICS:
        (lib / f"{topic}.md").write_text(f"# {topic.title()}\n\nA note about {topic}.\n")
    code, out = invoke("ingest", str(lib))
    assert code == 0, out
    return lib


def xnai(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m xnai`` in a new process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "xnai", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=os.environ.copy(),
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("encrypted", ["true", "false"])
def test_overwritten_vectors_fail_verify(
    env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, encrypted: str
) -> None:
    monkeypatch.setenv("XNAI_ENTERPRISE__SECURITY__ENCRYPTION_ENABLED", encrypted)
    lib = tmp_path / "lib"
    lib.mkdir()
    for topic in TOPICS:
        (lib / f"{topic}.md").write_text(f"# {topic.title()}\n\nA note about {topic}.\n")
    assert invoke("ingest", str(lib))[0] == 0
    assert invoke("index", "verify")[0] == 0
    vectors = generation_dir(env) / "vectors.faiss"
    assert vectors.stat().st_size > 8192
    overwrite_4k(vectors)
    code, out = invoke("index", "verify")
    assert code == 1
    assert "vectors.faiss" in plain(out) and "xnai index rebuild" in plain(out)


def remove(path: Path) -> None:
    path.unlink()


@pytest.mark.parametrize(
    ("name", "damage", "command"),
    [
        ("vectors.faiss", truncate, ["ask", "What is a note about glaciers?"]),
        ("vector_ids.json", remove, ["index", "stats"]),
        ("lexical.bm25", truncate, ["remove", "/nowhere.md"]),
    ],
)
def test_truncated_index_file_exits_2_with_one_error_line(
    library: Path,
    env: Path,
    tmp_path: Path,
    name: str,
    damage: Callable[[Path], None],
    command: list[str],
) -> None:
    damage(generation_dir(env) / name)
    done = xnai(*command, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: index generation 1 is damaged")
    assert name in lines[0] and lines[0].endswith("`xnai index rebuild`")
    assert done.stdout == ""


def test_rebuild_restores_a_damaged_index_from_the_command_line(library: Path, env: Path) -> None:
    overwrite_4k(generation_dir(env) / "vectors.faiss")
    assert invoke("index", "stats")[0] != 0
    code, out = invoke("index", "rebuild")
    assert code == 0, out
    assert "rebuilt: generation 2, 6 documents, 6 chunks" in plain(out)
    code, out = invoke("index", "verify")
    assert code == 0 and "OK" in out
    code, out = invoke("ask", "--json", "--mode", "dense", "A note about glaciers")
    assert code == 0, out
    assert json.loads(out)["sources"][0]["source"].endswith("glaciers.md")
