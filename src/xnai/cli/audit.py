"""``xnai audit``: check and read the tamper-evident audit log."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape

from xnai.bootstrap import build_auditor
from xnai.cli.context import err, out, settings
from xnai.services.audit import Auditor

app = typer.Typer(help="Check and read the tamper-evident audit log.", no_args_is_help=True)


def _auditor() -> Auditor:
    # Only the key ring and the log: an audit check must not depend on the index loading.
    return build_auditor(settings())


@app.command("verify")
def verify() -> None:
    """Check every line's HMAC, the chain and the anchor; exit 1 naming the first bad line."""
    result = _auditor().verify()
    if not result.ok:
        err.print(f"[red]FAILED[/red] {escape(result.describe())}", soft_wrap=True)
        raise typer.Exit(code=1)
    out.print(result.describe(), highlight=False)


@app.command("tail")
def tail(
    n: Annotated[int, typer.Option("-n", "--lines", min=1, help="how many lines")] = 20,
) -> None:
    """Print the last lines of the audit log, one JSON object per line."""
    for line in _auditor().tail(n):
        out.print(json.dumps(line, sort_keys=True), markup=False, highlight=False, soft_wrap=True)
