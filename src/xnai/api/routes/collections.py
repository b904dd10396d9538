"""Collections: list the readable ones; admins create them and grant or revoke access."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from xnai.api.deps import AccessDep
from xnai.api.openapi import SIGNED_IN, errors
from xnai.api.schemas import AccessChange, NewCollection
from xnai.api.security import PrincipalDep, require
from xnai.domain.access import Collection
from xnai.domain.rbac import Permission, Principal

router = APIRouter(tags=["collections"], responses=SIGNED_IN)
ADMIN = Permission.ADMIN_SYSTEM


def collection_json(
    collection: Collection, principal: Principal, documents: int | None = None
) -> dict[str, Any]:
    """A collection as the caller may see it: the access lists for admins only."""
    body: dict[str, Any] = {
        "name": collection.name,
        "description": collection.description,
        "writable": collection.writable_by(principal),
    }
    if documents is not None:
        body["documents"] = documents
    if principal.is_admin:
        body.update(
            readable_roles=list(collection.readable_roles),
            readable_users=list(collection.readable_users),
            writable_roles=list(collection.writable_roles),
            writable_users=list(collection.writable_users),
        )
    return body


@router.get("/v1/collections", dependencies=[require(Permission.READ_DOCUMENTS)])
def list_collections(principal: PrincipalDep, access: AccessDep) -> dict[str, Any]:
    """The collections the caller may read, with their number of documents."""
    counts = access.document_counts()
    readable = access.readable(principal)
    return {"collections": [collection_json(x, principal, counts.get(x.name, 0)) for x in readable]}


@router.post(
    "/v1/collections", status_code=201, dependencies=[require(ADMIN)], responses=errors(404, 409)
)
def create_collection(
    body: NewCollection, principal: PrincipalDep, access: AccessDep
) -> dict[str, Any]:
    """Create a collection (readable by admins only until roles or users are listed)."""
    created = access.create(
        body.name,
        description=body.description,
        readable_roles=body.readable_roles,
        readable_users=body.readable_users,
        writable_roles=body.writable_roles,
        writable_users=body.writable_users,
        actor=principal.user_id,
    )
    return {"collection": collection_json(created, principal, 0)}


@router.post(
    "/v1/collections/{name}/grant", dependencies=[require(ADMIN)], responses=errors(404, 409)
)
def grant(name: str, body: AccessChange, principal: PrincipalDep, access: AccessDep) -> Any:
    """Let roles or users read a collection (and write it with ``write``)."""
    changed = access.grant(
        name, roles=body.roles, users=body.users, write=body.write, actor=principal.user_id
    )
    return {"collection": collection_json(changed, principal)}


@router.post(
    "/v1/collections/{name}/revoke", dependencies=[require(ADMIN)], responses=errors(404, 409)
)
def revoke(name: str, body: AccessChange, principal: PrincipalDep, access: AccessDep) -> Any:
    """Take roles or users off a collection (off its write list only with ``write``)."""
    changed = access.revoke(
        name, roles=body.roles, users=body.users, write_only=body.write, actor=principal.user_id
    )
    return {"collection": collection_json(changed, principal)}


@router.delete("/v1/collections/{name}", dependencies=[require(ADMIN)], responses=errors(404, 409))
def remove(name: str, principal: PrincipalDep, access: AccessDep) -> dict[str, Any]:
    """Delete an empty collection; 409 while it holds documents."""
    access.remove(name, actor=principal.user_id)
    return {"deleted": name}
