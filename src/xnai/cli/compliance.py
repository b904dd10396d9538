"""``xnai compliance ...`` and ``xnai privacy ...``: self-audits, retention, subject rights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from xnai.cli.context import container, err, out
from xnai.services.compliance import FRAMEWORKS

app = typer.Typer(help="Compliance self-audits and the retention job.", no_args_is_help=True)
privacy_app = typer.Typer(help="Data subject rights: export and erasure.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="print the report as JSON")]


@app.command("run")
def run(
    framework: Annotated[str, typer.Argument(help=f"one of {', '.join(FRAMEWORKS)}")],
    as_json: JsonOpt = False,
) -> None:
    """Inspect this installation for a framework; exit 1 when a check fails."""
    report = container().compliance.run(framework.lower(), user_id="local")
    if as_json:
        out.print_json(json.dumps(report.as_dict()))
    else:
        for r in report.results:
            mark = "[green]pass[/green]" if r.passed else "[red]FAIL[/red]"
            out.print(f"{mark}  {r.check_id:<20} {escape(r.name)}", highlight=False)
            if not r.passed:
                out.print(f"      evidence: {escape(json.dumps(r.evidence))}", highlight=False)
                out.print(f"      fix: {escape(r.recommendation)}", highlight=False)
        out.print(
            f"{report.framework}: {report.passed}/{len(report.results)} checks passed, "
            f"score {report.score}"
        )
    if report.passed != len(report.results):
        raise typer.Exit(code=1)


@app.command("retention")
def retention() -> None:
    """Remove documents, credentials and audit lines older than the retention period."""
    report = container().retention.run(user_id="local")
    out.print_json(json.dumps(report.as_dict()))


@privacy_app.command("export")
def export(
    user: Annotated[str, typer.Argument(help="username or user id")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write to this file (mode 0600)")
    ] = None,
) -> None:
    """Everything stored about a user, as JSON."""
    data = json.dumps(container().privacy.export(user, actor="local"), indent=2)
    if output is None:
        out.print_json(data)
        return
    import os

    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(data + "\n")
    err.print(f"wrote {escape(str(output))}")


@privacy_app.command("erase")
def erase(
    user: Annotated[str, typer.Argument(help="username or user id")],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
) -> None:
    """Erase a user's documents everywhere and their account; pseudonymise the audit log."""
    if not yes:
        typer.confirm(f"Erase every document and the account of {user}?", abort=True)
    report = container().privacy.erase(user, actor="local")
    out.print_json(json.dumps(report.as_dict()))
