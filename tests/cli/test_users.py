"""``xnai init`` makes the first admin; ``xnai users ...`` manages accounts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xnai.bootstrap import build
from xnai.cli.main import app
from xnai.config import load_settings
from xnai.domain.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
)

runner = CliRunner()


def invoke(*args: str, stdin: str | None = None) -> tuple[int, str, BaseException | None]:
    result = runner.invoke(app, list(args), input=stdin)
    return result.exit_code, result.output, result.exception


def password_in(output: str) -> str:
    match = re.search(r"^password\s+(\S+)$", output, re.M)
    assert match, output
    return match.group(1)


def login(username: str, password: str) -> str:
    """Sign in through the service every login path uses."""
    c = build(load_settings())
    try:
        return c.auth.login(username, password).token
    finally:
        c.close()


def test_init_creates_the_first_admin_once(env: Path) -> None:
    code, out, _ = invoke("init")
    assert code == 0, out
    password = password_in(out)
    assert "admin user      admin" in out and "shown only this once" in out
    assert login("admin", password)
    db = (env / "xnai.db").read_bytes()
    assert password.encode() not in db  # never stored in clear
    code, out, _ = invoke("init")
    assert code == 0 and "already set up" in out
    assert "password" not in out
    code, out, _ = invoke("users", "list", "--json")
    assert [u["username"] for u in json.loads(out)] == ["admin"]


def test_add_with_a_random_or_a_given_password(env: Path) -> None:
    invoke("init")
    code, out, _ = invoke("users", "add", "Bob", "--role", "editor")
    assert code == 0 and "created bob (editor)" in out
    assert login("bob", password_in(out))
    code, out, _ = invoke(
        "users", "add", "carol", "--password-stdin", stdin="a chosen passphrase\n"
    )
    assert code == 0 and "password" not in out
    assert login("carol", "a chosen passphrase")
    code, out, _ = invoke(
        "users", "add", "dave", "--prompt", stdin="another passphrase\nanother passphrase\n"
    )
    assert code == 0, out
    assert login("dave", "another passphrase")
    listed = {u["username"]: u for u in json.loads(invoke("users", "list", "--json")[1])}
    assert listed["bob"]["role"] == "editor" and listed["carol"]["role"] == "viewer"


def test_refusals(env: Path) -> None:
    invoke("init")
    code, _, exc = invoke("users", "add", "eve", "--password-stdin", stdin="password1234\n")
    assert isinstance(exc, InvalidInputError) and "common or breached" in str(exc)
    invoke("users", "add", "eve")
    _, _, exc = invoke("users", "add", "EVE")
    assert isinstance(exc, ConflictError)
    _, _, exc = invoke("users", "disable", "ghost")
    assert isinstance(exc, NotFoundError)
    _, _, exc = invoke("users", "set-role", "admin", "viewer")
    assert isinstance(exc, ConflictError) and "last enabled admin" in str(exc)


def test_disable_enable_set_role_reset_unlock(env: Path) -> None:
    invoke("init")
    _, out, _ = invoke("users", "add", "bob")
    first = password_in(out)
    token_holder = build(load_settings())
    token = token_holder.auth.login("bob", first).token
    code, out, _ = invoke("users", "disable", "bob")
    assert code == 0 and "revoked" in out
    with pytest.raises(AuthenticationError):
        token_holder.auth.authenticate(token)  # revoked at once
    assert invoke("users", "enable", "bob")[0] == 0
    code, out, _ = invoke("users", "set-role", "bob", "system")  # the command line may
    assert code == 0 and "bob is now system" in out
    code, out, _ = invoke("users", "list")
    assert re.search(r"^bob\s+system\s+enabled\s+no-mfa", out, re.M), out
    for _ in range(5):
        with pytest.raises(AuthenticationError):  # wrong passwords, the last one locks
            token_holder.auth.login("bob", "wrong password 123")
    assert "locked until" in invoke("users", "list")[1]
    assert invoke("users", "unlock", "bob")[0] == 0
    assert "locked until" not in invoke("users", "list")[1]
    code, out, _ = invoke("users", "reset-password", "bob")
    assert code == 0
    assert login("bob", password_in(out))
    code, out, _ = invoke(
        "users", "reset-password", "bob", "--password-stdin", stdin="my own one!!\n"
    )
    assert code == 0 and login("bob", "my own one!!")
    assert invoke("users", "reset-mfa", "bob")[0] == 0
    token_holder.close()


def test_password_options_exclude_each_other(env: Path) -> None:
    invoke("init")
    _, _, exc = invoke("users", "add", "zed", "--password-stdin", "--prompt", stdin="x\n")
    assert isinstance(exc, InvalidInputError)
