"""``xnai collections``: collections of documents and who may read or write them."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape

from xnai.cli.context import container, out
from xnai.domain.access import AccessScope, Collection
from xnai.domain.rbac import LOCAL_ADMIN, Principal, Role

app = typer.Typer(
    help="Collections of documents and who may read or write them.", no_args_is_help=True
)

RolesOpt = Annotated[
    list[str] | None, typer.Option("--role", help="a role (viewer, editor, admin, system)")
]
UsersOpt = Annotated[list[str] | None, typer.Option("--user", help="a user id or username")]
# The command line runs as the local administrator: changes are recorded under that id.
ACTOR = LOCAL_ADMIN.user_id


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="collection name (letters, digits, _ . -)")],
    description: Annotated[str, typer.Option(help="what the collection holds")] = "",
    read_role: Annotated[
        list[str] | None, typer.Option("--read-role", help="a role that may read it")
    ] = None,
    read_user: Annotated[
        list[str] | None, typer.Option("--read-user", help="a user id or username that may read")
    ] = None,
    write_role: Annotated[
        list[str] | None, typer.Option("--write-role", help="a role that may add and remove")
    ] = None,
    write_user: Annotated[
        list[str] | None, typer.Option("--write-user", help="a user that may add and remove")
    ] = None,
) -> None:
    """Create a collection; nobody but admins reads it until roles or users are listed."""
    writers_roles, writers_users = write_role or [], write_user or []
    created = container().access.create(
        name,
        description=description,
        # Who may write may also read.
        readable_roles=[*(read_role or []), *writers_roles],
        readable_users=[*(read_user or []), *writers_users],
        writable_roles=writers_roles,
        writable_users=writers_users,
        actor=ACTOR,
    )
    out.print(f"created collection {escape(created.name)}")
    _print(created, None)


@app.command("list")
def list_collections(
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Every collection with its document count and access lists."""
    c = container()
    counts = c.access.document_counts()
    found = list(c.access.store.list())
    if as_json:
        out.print_json(json.dumps({"collections": [as_dict(x, counts) for x in found]}))
        return
    for collection in found:
        _print(collection, counts.get(collection.name, 0))
    orphans = sorted(set(counts) - {x.name for x in found})
    for name in orphans:
        out.print(
            f"[yellow]{escape(name)}[/yellow]: {counts[name]} document(s) in no collection "
            "(admins only)"
        )


@app.command("grant")
def grant(
    name: Annotated[str, typer.Argument(help="collection name")],
    role: RolesOpt = None,
    user: UsersOpt = None,
    write: Annotated[bool, typer.Option(help="also let them add and remove documents")] = False,
) -> None:
    """Let roles or users read a collection (and write it with --write)."""
    _need(role, user)
    changed = container().access.grant(
        name, roles=role or [], users=user or [], write=write, actor=ACTOR
    )
    _print(changed, None)


@app.command("revoke")
def revoke(
    name: Annotated[str, typer.Argument(help="collection name")],
    role: RolesOpt = None,
    user: UsersOpt = None,
    write_only: Annotated[
        bool, typer.Option(help="take away writing only; they may still read")
    ] = False,
) -> None:
    """Take roles or users off a collection's read and write lists."""
    _need(role, user)
    changed = container().access.revoke(
        name, roles=role or [], users=user or [], write_only=write_only, actor=ACTOR
    )
    _print(changed, None)


@app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="collection name")]) -> None:
    """Delete an empty collection (remove or move its documents first)."""
    container().access.remove(name, actor=ACTOR)
    out.print(f"removed collection {escape(name)}")


def cli_principal(as_user: str | None, as_role: Role = Role.VIEWER) -> Principal:
    """Who a command reads as: the local administrator unless ``--as-user`` names someone
    (an account by username or user id: grants name user ids)."""
    if not as_user:
        return LOCAL_ADMIN
    user_id = container().auth.user_id_of(as_user) or as_user
    return Principal(user_id=user_id, username=as_user, role=as_role, via="local")


def cli_scope(as_user: str | None, as_role: Role = Role.VIEWER) -> AccessScope:
    """The access scope of ``cli_principal``."""
    return container().access.scope_for(cli_principal(as_user, as_role))


def as_dict(collection: Collection, counts: dict[str, int] | None = None) -> dict[str, object]:
    """The JSON shape of a collection."""
    body: dict[str, object] = {
        "name": collection.name,
        "description": collection.description,
        "readable_roles": list(collection.readable_roles),
        "readable_users": list(collection.readable_users),
        "writable_roles": list(collection.writable_roles),
        "writable_users": list(collection.writable_users),
    }
    if counts is not None:
        body["documents"] = counts.get(collection.name, 0)
    return body


def _need(roles: list[str] | None, users: list[str] | None) -> None:
    if not roles and not users:
        raise typer.BadParameter("name at least one --role or --user")


def _print(collection: Collection, documents: int | None) -> None:
    held = f" ({documents} document(s))" if documents is not None else ""
    about = f" - {escape(collection.description)}" if collection.description else ""
    out.print(f"[bold]{escape(collection.name)}[/bold]{held}{about}", soft_wrap=True)
    for label, values in (
        ("read", (*collection.readable_roles, *_users(collection.readable_users))),
        ("write", (*collection.writable_roles, *_users(collection.writable_users))),
    ):
        out.print(f"  {label:5} {escape(', '.join(values)) or '(admins only)'}", soft_wrap=True)


def _users(users: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f"user:{u}" for u in users)
