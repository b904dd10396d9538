"""The xnai command line, driven in-process with real files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.fixtures_docs import make_docx, minimal_pdf, random_bytes
from tests.identity_fixtures import postgres_available, postgres_database
from xnai.cli.main import app
from xnai.domain.errors import ConfigError

runner = CliRunner()


@pytest.fixture
def env(env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shared data directory, with a small file size limit."""
    monkeypatch.setenv("XNAI_INGEST__MAX_FILE_MB", "0.05")  # 51 KiB
    return env


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_init_creates_an_owner_only_data_directory(env: Path) -> None:
    code, out = invoke("init")
    assert code == 0, out
    assert "generation 0" in out
    assert env.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("backend", ["llama_server", "llama_cpp"])
def test_init_names_the_model_file_of_either_local_backend(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    model = tmp_path / "my-model.gguf"
    model.write_bytes(b"GGUF")  # init names the file; it does not load it
    monkeypatch.setenv("XNAI_MODELS__LLM_BACKEND", backend)
    monkeypatch.setenv("XNAI_MODELS__LLM_PATH", str(model))
    code, out = invoke("init")
    assert code == 0, out
    assert "model" in out and "my-model.gguf" in out.replace("\n", "")


def test_bad_inputs_get_per_file_errors_and_the_batch_continues(env: Path, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "good.md").write_text("# Good\n\nThe turbine spins at 3000 rpm.\n")
    (lib / "latin1.txt").write_bytes("Le café est très chaud.".encode("latin-1"))
    (lib / "report.pdf").write_bytes(minimal_pdf("Quarterly revenue grew nine percent."))
    make_docx(lib / "memo.docx", heading="Memo", paragraphs=["Lunch is at noon."])
    (lib / "corrupt.pdf").write_bytes(minimal_pdf("x")[:60])
    (lib / "binary.txt").write_bytes(random_bytes(2000))
    (lib / "empty.md").write_bytes(b"")
    (lib / "huge.txt").write_text("word " * 20000)  # 100 KB > 51 KiB limit
    code, out = invoke("ingest", str(lib))
    assert code == 1
    failed = {
        line.split()[1].rsplit("/", 1)[-1].rstrip(":"): line
        for line in out.splitlines()
        if line.startswith("failed")
    }
    assert set(failed) == {"corrupt.pdf", "binary.txt", "empty.md", "huge.txt"}
    assert "corrupt PDF" in failed["corrupt.pdf"]
    assert "binary" in failed["binary.txt"]
    assert "empty file" in failed["empty.md"]
    assert "over the limit" in failed["huge.txt"] and "ingest.max_file_mb" in out
    assert "4 added, 0 replaced, 0 unchanged, 4 failed" in out

    code, out = invoke("index", "stats")
    assert json.loads(out)["documents"] == 4
    code, out = invoke("ask", "--json", "How hot is the café?")
    assert code == 0
    answer = json.loads(out)
    assert "café" in answer["response"]
    assert answer["sources"][0]["source"].endswith("latin1.txt")


def test_reingest_is_a_no_op_and_remove_deletes(env: Path, tmp_path: Path) -> None:
    doc = tmp_path / "a.md"
    doc.write_text("# A\n\nAlpha text about valves.\n")
    assert invoke("ingest", str(doc))[0] == 0
    code, out = invoke("ingest", str(doc))
    assert "0 added, 0 replaced, 1 unchanged" in out
    code, out = invoke("remove", str(doc))
    assert code == 0 and "removed" in out
    assert json.loads(invoke("index", "stats")[1])["documents"] == 0
    code, out = invoke("remove", str(doc))
    assert code != 0


def test_ask_streams_then_lists_citations(env: Path, tmp_path: Path) -> None:
    doc = tmp_path / "pump.md"
    doc.write_text("# Pump\n\nThe coolant pump runs at 1450 rpm.\n")
    invoke("ingest", str(doc))
    code, out = invoke("ask", "How fast does the coolant pump run?")
    assert code == 0
    assert "1450 rpm" in out
    assert "Sources" in out and "pump.md" in out


def test_index_verify_reports_ok(env: Path, tmp_path: Path) -> None:
    doc = tmp_path / "a.md"
    doc.write_text("# A\n\nSome words.\n")
    invoke("ingest", str(doc))
    code, out = invoke("index", "verify")
    assert code == 0 and "OK" in out


def test_config_show_redacts_secrets(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XNAI_MODELS__OPENAI_API_KEY", "sk-secret-123")
    code, out = invoke("config", "show")
    assert code == 0
    shown = json.loads(out)
    assert shown["models"]["openai_api_key"] == "**********"
    assert "sk-secret-123" not in out
    assert shown["enterprise"]["circuit_breaker"] == {"fail_max": 3, "reset_timeout": 60.0}


def test_output_lines_stay_whole_on_a_narrow_terminal(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xnai.cli import context

    for console in (context.out, context.err):
        monkeypatch.setattr(console, "_width", 30)
    lib = tmp_path / "a-folder-with-a-rather-long-name" / "and-another-level"
    lib.mkdir(parents=True)
    (lib / "empty-but-with-a-long-name.md").write_bytes(b"")
    code, out = invoke("ingest", str(lib))
    assert code == 1
    failed = [line for line in out.splitlines() if line.startswith("failed")]
    assert len(failed) == 1 and failed[0].split()[1].endswith("empty-but-with-a-long-name.md:")
    assert "empty file" in failed[0]
    assert "0 added, 0 replaced, 0 unchanged, 1 failed; 0 chunks" in out


def test_database_password_never_in_audit_state_or_config_show(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not postgres_available():
        pytest.skip("no PostgreSQL server")
    password = "Pg-canary-7Q2xv9"
    with postgres_database() as url:
        with_password = url.replace("postgres@", f"postgres:{password}@", 1)
        monkeypatch.setenv("XNAI_STORAGE__DATABASE_URL", with_password)
        code, init_out = invoke("init")
        assert code == 0, init_out
        code, shown = invoke("config", "show")
        assert code == 0, shown
        # A database the driver cannot reach, and a URL it cannot parse: errors only.
        monkeypatch.setenv("XNAI_STORAGE__DATABASE_URL", with_password.replace("5432", "1"))
        unreachable = runner.invoke(app, ["index", "stats"])
        monkeypatch.setenv("XNAI_STORAGE__DATABASE_URL", f"postgresql://u:{password}@h:port/db")
        unparsable = runner.invoke(app, ["index", "stats"])
    assert isinstance(unparsable.exception, ConfigError)
    assert "storage.database_url" in str(unparsable.exception)
    database = json.loads(shown)["storage"]["database_url"]
    assert database.startswith("postgresql+psycopg://postgres:**********@127.0.0.1:5432/")
    failures = [f"{r.output}{r.exception!r}{r.exception}" for r in (unreachable, unparsable)]
    for out in (init_out, shown, *failures):
        assert password not in out
    files = [p for p in env.rglob("*") if p.is_file()]
    assert env / "audit" / "audit.jsonl" in files and env / "compliance" / "state.json" in files
    for path in files:
        assert password.encode() not in path.read_bytes(), path
