"""``xnai ask --bundle`` writes an answer's signed bundle; ``xnai verify-answer`` checks it:
each outcome has its own message and exit status (0 verified, 2 malformed or unreadable,
3 forged, 4 a document changed, 5 a document erased)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from tests.cli.output import plain
from tests.cli.process import xnai
from xnai.cli.main import app
from xnai.domain.errors import NotFoundError

runner = CliRunner()
QUESTION = "How fast does the coolant pump of reactor seven run?"
PUMP = "# Pump\n\nThe coolant pump of reactor seven runs at 1450 rpm.\n"


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args))


@pytest.fixture
def library(env: Path, tmp_path: Path) -> Path:
    """An initialised data directory with a pump note and a valve note."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "pump.md").write_text(PUMP)
    (lib / "valve.md").write_text("# Valve\n\nThe relief valve opens at 12 bar.\n")
    assert invoke("init").exit_code == 0
    assert invoke("ingest", str(lib)).exit_code == 0
    return lib


@pytest.fixture
def bundle(library: Path, tmp_path: Path) -> Path:
    """The bundle of an answer that cites the pump note."""
    path = tmp_path / "answer-bundle.json"
    result = invoke("ask", QUESTION, "--bundle", str(path))
    assert result.exit_code == 0, result.output
    assert "1450 rpm" in result.output and f"answer bundle written to {path}" in plain(
        result.output
    )
    return path


def doc_id(bundle: Path) -> str:
    return str(json.loads(bundle.read_text())["citations"][0]["doc_id"])


def test_a_fresh_bundle_verifies(bundle: Path) -> None:
    result = invoke("verify-answer", str(bundle))
    assert result.exit_code == 0, result.output
    key_id = json.loads(bundle.read_text())["signature"]["key_id"]
    assert plain(result.output) == (
        f"OK: the signature holds (key {key_id}); 1 cited span read the same in the library"
    )


def test_an_altered_bundle_is_forged_exit_3(bundle: Path) -> None:
    bundle.write_text(bundle.read_text().replace("1450 rpm", "1540 rpm"))
    result = invoke("verify-answer", str(bundle))
    assert result.exit_code == 3, result.output
    text = plain(result.output)
    assert text.startswith(f"FORGED: {bundle}: its signature does not match its content")
    assert "CHANGED" not in text and "OK" not in text


def test_a_changed_document_exit_4_names_it(bundle: Path, library: Path) -> None:
    (library / "pump.md").write_text(PUMP.replace("1450", "1500"))
    assert invoke("ingest", str(library)).exit_code == 0
    result = invoke("verify-answer", str(bundle))
    assert result.exit_code == 4, result.output
    source = library / "pump.md"
    assert plain(result.output).startswith(
        f"CHANGED: document {doc_id(bundle)} ({source}) changed: the text cited as [1]"
    )


def test_an_erased_document_exit_5_names_it(bundle: Path, library: Path) -> None:
    assert invoke("remove", str(library / "pump.md")).exit_code == 0
    result = invoke("verify-answer", str(bundle))
    assert result.exit_code == 5, result.output
    assert plain(result.output) == (
        f"ERASED: document {doc_id(bundle)} ({library / 'pump.md'}), cited as [1], is no longer "
        "in the library: it was removed or erased"
    )


def test_a_malformed_or_missing_file_is_one_error_line_exit_2(bundle: Path, tmp_path: Path) -> None:
    body = json.loads(bundle.read_text())
    del body["answer"]
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(body))
    for path, message in (
        (broken, f"error: {broken}: malformed answer bundle: answer is missing"),
        (tmp_path / "nowhere.json", f"error: cannot read {tmp_path / 'nowhere.json'}: No such"),
    ):
        result = xnai("verify-answer", str(path))
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(message), lines
        assert result.stdout == ""


def test_json_output_lists_each_problem(bundle: Path, library: Path) -> None:
    assert invoke("remove", str(library / "pump.md")).exit_code == 0
    result = invoke("verify-answer", str(bundle), "--json")
    assert result.exit_code == 5
    report = json.loads(result.stdout)
    assert report["status"] == "erased" and report["library_checked"] is True
    [problem] = report["problems"]
    assert problem["doc_id"] == doc_id(bundle) and problem["citations"] == [1]
    assert problem["status"] == "erased" and "no longer in the library" in problem["message"]


def test_a_published_public_key_checks_the_signature_without_the_data_directory(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    published = invoke("keys", "public-key")
    assert published.exit_code == 0 and published.output.startswith("-----BEGIN PUBLIC KEY-----")
    pem = tmp_path / "xnai.pem"
    pem.write_text(published.output)
    elsewhere = tmp_path / "not-an-installation"
    monkeypatch.setenv("XNAI_STORAGE__DATA_DIR", str(elsewhere))
    result = invoke("verify-answer", str(bundle), "--public-key", str(pem))
    assert result.exit_code == 0, result.output
    assert plain(result.output) == (
        f"OK: the signature holds under the public key {pem}; the library was not checked"
    )
    assert not elsewhere.exists()
    bundle.write_text(bundle.read_text().replace("1450 rpm", "1540 rpm"))
    assert invoke("verify-answer", str(bundle), "--public-key", str(pem)).exit_code == 3


def test_the_public_key_of_a_key_id(bundle: Path) -> None:
    key_id = json.loads(bundle.read_text())["signature"]["key_id"]
    shown = json.loads(invoke("keys", "public-key", "--json").stdout)
    assert shown["key_id"] == key_id and shown["algorithm"] == "ed25519"
    assert shown["public_key"] == invoke("keys", "public-key", "--key-id", key_id).output
    unknown = invoke("keys", "public-key", "--key-id", "000000000000")
    assert isinstance(unknown.exception, NotFoundError)
    assert "no public key for key 000000000000" in str(unknown.exception)


def test_a_bundle_survives_a_key_rotation(bundle: Path) -> None:
    assert invoke("keys", "rotate").exit_code == 0
    assert invoke("verify-answer", str(bundle)).exit_code == 0


def test_ask_json_names_the_answer_id(library: Path) -> None:
    result = invoke("ask", QUESTION, "--json")
    assert result.exit_code == 0
    answer_id = json.loads(result.stdout)["answer_id"]
    assert isinstance(answer_id, str) and len(answer_id) == 32
