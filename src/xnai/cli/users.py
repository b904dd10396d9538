"""``xnai users ...``: manage accounts from the command line (runs as the local admin).

Whoever can run these commands can read the data directory, so they act as LOCAL_ADMIN: the
only principal that may grant the ``system`` role.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.markup import escape

from xnai.bootstrap import Container
from xnai.cli.context import container, err, out
from xnai.domain.errors import InvalidInputError
from xnai.domain.rbac import LOCAL_ADMIN, Role

app = typer.Typer(help="Manage user accounts, roles and lockouts.", no_args_is_help=True)

UserArg = Annotated[str, typer.Argument(help="username (or user id)")]
StdinOpt = Annotated[
    bool, typer.Option("--password-stdin", help="read the password from the first stdin line")
]
PromptOpt = Annotated[bool, typer.Option("--prompt", help="ask for the password (hidden)")]


def create_first_admin(c: Container) -> None:
    """The first admin of a new installation, its random password printed once."""
    made = c.auth.bootstrap_admin()
    if made is None:
        out.print("users           already set up (no account created)")
        return
    user, password = made
    out.print(f"admin user      {user.username}")
    out.print(f"password        {password}", markup=False, highlight=False)
    err.print(
        "[yellow]The password is shown only this once and is not stored: keep it safe, "
        "then change it (POST /v1/auth/password).[/yellow]"
    )


@app.command("add")
def add(
    username: Annotated[str, typer.Argument(help="the new username")],
    role: Annotated[Role, typer.Option(help="viewer, editor, admin or system")] = Role.VIEWER,
    password_stdin: StdinOpt = False,
    prompt: PromptOpt = False,
) -> None:
    """Create a user; without --password-stdin or --prompt a random password is printed."""
    given = _password_input(password_stdin, prompt)
    user, generated = container().auth.create_user(LOCAL_ADMIN, username, role, given)
    out.print(f"created {escape(user.username)} ({user.role.value})")
    _print_once(user.username, generated)


@app.command("list")
def list_users(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Every user with role, state, MFA and lockout."""
    users = container().auth.users(LOCAL_ADMIN)
    if as_json:
        out.print_json(json.dumps([u.as_dict() for u in users]))
        return
    for u in users:
        state = "enabled" if u.enabled else "disabled"
        mfa = "mfa" if u.mfa_enrolled else "no-mfa"
        locked = f"  locked until {u.locked_until.isoformat()}" if u.locked_until else ""
        out.print(
            f"{escape(u.username):24} {u.role.value:8} {state:9} {mfa:7}{locked}", highlight=False
        )


@app.command("disable")
def disable(username: UserArg) -> None:
    """Disable a user and revoke all their sessions and API keys."""
    user = container().auth.set_enabled(LOCAL_ADMIN, username, False)
    out.print(f"disabled {escape(user.username)}; sessions and API keys revoked")


@app.command("enable")
def enable(username: UserArg) -> None:
    """Enable a disabled user."""
    user = container().auth.set_enabled(LOCAL_ADMIN, username, True)
    out.print(f"enabled {escape(user.username)}")


@app.command("set-role")
def set_role(
    username: UserArg,
    role: Annotated[Role, typer.Argument(help="viewer, editor, admin or system")],
) -> None:
    """Change a user's role."""
    user = container().auth.set_role(LOCAL_ADMIN, username, role)
    out.print(f"{escape(user.username)} is now {user.role.value}")


@app.command("reset-password")
def reset_password(
    username: UserArg, password_stdin: StdinOpt = False, prompt: PromptOpt = False
) -> None:
    """Set a new password (random unless given), revoke the user's credentials, unlock."""
    given = _password_input(password_stdin, prompt)
    generated = container().auth.reset_password(LOCAL_ADMIN, username, given)
    out.print(f"password of {escape(username)} reset; sessions and API keys revoked")
    _print_once(username, generated)


@app.command("unlock")
def unlock(username: UserArg) -> None:
    """Lift a lockout after failed logins."""
    container().auth.unlock(LOCAL_ADMIN, username)
    out.print(f"unlocked {escape(username)}")


@app.command("reset-mfa")
def reset_mfa(username: UserArg) -> None:
    """Remove a user's MFA enrolment (a lost device); they enrol again at the next login."""
    container().auth.reset_mfa(LOCAL_ADMIN, username)
    out.print(f"MFA of {escape(username)} removed")


def _password_input(from_stdin: bool, prompt: bool) -> str | None:
    if from_stdin and prompt:
        raise InvalidInputError("use --password-stdin or --prompt, not both")
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if prompt:
        return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))
    return None


def _print_once(username: str, password: str | None) -> None:
    if password is None:
        return
    out.print(f"password        {password}", markup=False, highlight=False)
    err.print(
        f"[yellow]The password of {escape(username)} is shown only this once and is not "
        "stored.[/yellow]"
    )
