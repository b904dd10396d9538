"""``xnai collections``, ``xnai ingest --collection`` and ``xnai ask --as-user``."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from xnai.cli.main import app
from xnai.domain.errors import ConflictError, NotFoundError

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, BaseException | None]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output, result.exception


def listing() -> dict[str, dict[str, object]]:
    code, out, _ = invoke("collections", "list", "--json")
    assert code == 0, out
    return {c["name"]: c for c in json.loads(out)["collections"]}


def users() -> list[dict[str, object]]:
    code, out, _ = invoke("users", "list", "--json")
    assert code == 0, out
    listed: list[dict[str, object]] = json.loads(out)
    return listed


def test_add_grant_revoke_remove(env: Path) -> None:
    assert set(listing()) == {"default"}
    code, out, _ = invoke(
        "collections", "add", "team", "--description", "Team notes", "--read-role", "viewer"
    )
    assert code == 0 and "created collection team" in out
    code, _, exc = invoke("collections", "grant", "team", "--user", "alice")
    assert code == 1 and isinstance(exc, NotFoundError)  # no account named alice yet
    assert invoke("users", "add", "alice")[0] == 0
    alice = next(u["user_id"] for u in users() if u["username"] == "alice")
    code, out, _ = invoke("collections", "grant", "team", "--user", "alice", "--write")
    assert code == 0, out
    team = listing()["team"]
    assert team["readable_roles"] == ["viewer"] and team["readable_users"] == [alice]
    assert team["writable_users"] == [alice] and team["documents"] == 0
    code, out, _ = invoke("collections", "revoke", "team", "--role", "viewer", "--user", "alice")
    assert code == 0, out
    team = listing()["team"]
    assert team["readable_roles"] == [] and team["writable_users"] == []
    code, out, _ = invoke("collections", "remove", "team")
    assert code == 0 and "removed collection team" in out
    assert "team" not in listing()


def test_grant_needs_someone_and_bad_roles_are_refused(env: Path) -> None:
    invoke("collections", "add", "team")
    code, out, _ = invoke("collections", "grant", "team")
    assert code == 2 and "--role or --user" in out
    code, _, exc = invoke("collections", "grant", "team", "--role", "root")
    assert code == 1 and "unknown role" in str(exc)


def test_ingest_into_a_collection_and_ask_as_a_user(env: Path, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "secret.md").write_text("# Alice\n\nThe vault code of alice is 4711 zebra.\n")
    (tmp_path / "pub.md").write_text("# Public\n\nThe canteen opens at noon.\n")
    code, _, exc = invoke("ingest", str(lib), "--collection", "alice-notes")
    assert code == 1 and isinstance(exc, NotFoundError)  # the collection must exist first
    assert invoke("users", "add", "alice")[0] == 0
    invoke("collections", "add", "alice-notes", "--read-user", "alice")
    code, out, _ = invoke("ingest", str(lib), "--collection", "alice-notes")
    assert code == 0 and "1 added" in out
    assert invoke("ingest", str(tmp_path / "pub.md"))[0] == 0
    assert listing()["alice-notes"]["documents"] == 1

    def sources(*extra: str) -> list[str]:
        code, out, _ = invoke("ask", "vault code zebra", "--mode", "lexical", "--json", *extra)
        assert code == 0, out
        return [s["source"] for s in json.loads(out)["sources"]]

    secret = str((lib / "secret.md").resolve())
    assert secret in sources()  # the local administrator reads everything
    assert secret in sources("--as-user", "alice")
    assert sources("--as-user", "bob") == []
    assert sources("--as-user", "alice", "--as-role", "system") == [secret]

    code, _, exc = invoke("collections", "remove", "alice-notes")
    assert code == 1 and isinstance(exc, ConflictError)
    code, out, _ = invoke("ingest", str(lib))  # moving needs a remove first
    assert code == 1 and "already in collection 'alice-notes'" in out
