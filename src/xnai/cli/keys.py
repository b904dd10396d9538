"""``xnai keys``: master-key status and rotation (ids and ages only, never key material)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.markup import escape

from xnai.cli.context import container, out
from xnai.domain.keys import KeyInfo
from xnai.domain.rbac import LOCAL_ADMIN

app = typer.Typer(
    help="Master keys: status, rotation and the public key of answer bundles.",
    no_args_is_help=True,
)


@app.command("status")
def status(
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Show the master keys: ids, states and ages (never the keys themselves)."""
    st = container().key_rotation.status()
    age = st.age_days()
    if as_json:
        payload = {
            "source": st.source,
            "encryption_enabled": st.encryption_enabled,
            "current_key_id": st.current.key_id,
            "current_key_age_days": None if age is None else round(age, 1),
            "max_age_days": st.max_age_days,
            "rotation_pending": st.rotation_pending,
            "keys": [_key_dict(k) for k in st.keys],
        }
        out.print_json(json.dumps(payload))
        return
    out.print(f"source          {escape(st.source)}", soft_wrap=True)
    out.print(f"encryption      {'on' if st.encryption_enabled else 'off (MAC keys only)'}")
    for k in st.keys:
        out.print(f"{k.state.value:<15} {k.key_id}  {_when(k)}")
    if st.rotation_pending:
        out.print(
            "[yellow]a rotation did not finish[/yellow]: run `xnai keys rotate` to complete it"
        )
    if st.too_old:
        out.print(
            f"[yellow]the current key is older than {st.max_age_days} days[/yellow]: "
            "run `xnai keys rotate`"
        )


@app.command("rotate")
def rotate() -> None:
    """Make a new master key, re-encrypt everything under it and retire the old one."""
    report = container().key_rotation.rotate(user_id=LOCAL_ADMIN.user_id)
    verb = "completed the unfinished rotation to" if report.resumed else "rotated to"
    out.print(f"{verb} key {report.key_id}")
    for name, count in report.rewritten.items():
        out.print(f"  re-encrypted {count} {escape(name)}")
    if report.retired:
        out.print(f"retired {', '.join(report.retired)} (audit MAC keys kept)")
    if report.still_configured:
        out.print(
            f"[yellow]remove the old key(s) {', '.join(report.still_configured)} from "
            "enterprise.security.master_key[/yellow]: nothing needs them any more"
        )


@app.command("public-key")
def public_key(
    key_id: Annotated[
        str | None,
        typer.Option("--key-id", help="the key that signed a bundle; default the current key"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Print the PEM public key that verifies answer bundles (safe to publish)."""
    bundles = container().answer_bundles
    pem = bundles.public_key(key_id)
    if as_json:
        chosen = key_id or container().key_rotation.status().current.key_id
        payload = {"key_id": chosen, "algorithm": bundles.signer.algorithm, "public_key": pem}
        out.print_json(json.dumps(payload))
        return
    out.print(pem, end="", markup=False, highlight=False, soft_wrap=True)


def _when(k: KeyInfo) -> str:
    if k.created_at is None:
        return "created: unknown (from the environment)"
    days = (datetime.now(UTC) - k.created_at).total_seconds() / 86400
    text = f"created {k.created_at.isoformat()} ({days:.0f} days ago)"
    return text + (f", retired {k.retired_at.isoformat()}" if k.retired_at else "")


def _key_dict(k: KeyInfo) -> dict[str, str | None]:
    return {
        "id": k.key_id,
        "state": k.state.value,
        "created_at": k.created_at.isoformat() if k.created_at else None,
        "retired_at": k.retired_at.isoformat() if k.retired_at else None,
    }
