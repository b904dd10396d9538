"""``xnai verify-answer``: check an answer bundle's signature and its cited spans."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from xnai.bootstrap import public_key_verifier
from xnai.cli.context import container, err, out
from xnai.domain.bundles import AnswerBundle, parse_bundle
from xnai.domain.errors import InvalidInputError, MalformedBundleError
from xnai.services.answer_bundles import Status, Verification, signature_problem

# Exit statuses, one per outcome (2 is every error, a malformed bundle among them).
EXIT = {Status.OK: 0, Status.FORGED: 3, Status.CHANGED: 4, Status.ERASED: 5}
MAX_BUNDLE_BYTES = 16 * 1024 * 1024


def register(app: typer.Typer) -> None:
    """Add ``verify-answer`` to the top level of ``app``."""
    app.command("verify-answer")(verify_answer)


def read_bundle(path: Path) -> AnswerBundle:
    """The bundle in the file ``path``; InvalidInputError when it cannot be read or is not
    a bundle."""
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_BUNDLE_BYTES + 1)
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_BUNDLE_BYTES:
        raise MalformedBundleError(f"{path} is larger than any answer bundle")
    try:
        return parse_bundle(data)
    except MalformedBundleError as exc:
        raise MalformedBundleError(f"{path}: {exc}") from None


def verify_answer(
    file: Annotated[Path, typer.Argument(help="the answer bundle (JSON) to check")],
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--public-key",
            help="check the signature with this PEM public key only (no data directory)",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Check an answer bundle: its signature, then that each cited span still reads the
    same in the library. Exit 0 verified, 3 forged, 4 a document changed, 5 one erased."""
    bundle = read_bundle(file)
    if public_key is not None:
        result = _offline(bundle, public_key)
    else:
        result = container().answer_bundles.verify(bundle)
    if as_json:
        out.print_json(json.dumps(_as_dict(result, offline=public_key is not None)))
    else:
        _report(result, file, public_key)
    raise typer.Exit(code=EXIT[result.status])


def _offline(bundle: AnswerBundle, pem_file: Path) -> Verification:
    """The signature checked with a published public key; the library is not read."""
    try:
        pem = pem_file.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read {pem_file}: {exc.strerror or exc}") from None
    reason = signature_problem(bundle, public_key_verifier(pem))
    key_id = bundle.signature.key_id if bundle.signature else ""
    status = Status.FORGED if reason else Status.OK
    return Verification(status, key_id, len(bundle.citations), reason=reason)


def _report(result: Verification, file: Path, public_key: Path | None) -> None:
    if result.status is Status.FORGED:
        err.print(
            f"[red]FORGED[/red]: {escape(str(file))}: {escape(result.reason)}", soft_wrap=True
        )
        return
    for problem in result.problems:
        label = problem.status.value.upper()
        err.print(f"[red]{label}[/red]: {escape(problem.message)}", soft_wrap=True)
    if result.problems:
        return
    if public_key is not None:
        out.print(
            f"OK: the signature holds under the public key {escape(str(public_key))}; "
            "the library was not checked",
            soft_wrap=True,
        )
        return
    out.print(
        f"OK: the signature holds (key {result.key_id}); {result.spans} cited "
        f"span{'s' if result.spans != 1 else ''} read the same in the library",
        soft_wrap=True,
    )
    for note in result.notes:
        out.print(f"note: {escape(note)}", soft_wrap=True)


def _as_dict(result: Verification, *, offline: bool) -> dict[str, Any]:
    return {
        "status": result.status.value,
        "key_id": result.key_id,
        "spans": result.spans,
        "library_checked": not offline and result.status is not Status.FORGED,
        "reason": result.reason or None,
        "problems": [
            {
                "status": p.status.value,
                "doc_id": p.doc_id,
                "source": p.source,
                "citations": list(p.numbers),
                "message": p.message,
            }
            for p in result.problems
        ],
        "notes": list(result.notes),
    }
