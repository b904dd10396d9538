"""The library: list, upload and delete documents."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from xnai.api.deps import AccessDep, IngestionDep, KnowledgeDep
from xnai.api.openapi import SIGNED_IN, errors
from xnai.api.security import PrincipalDep, client_ip, count_violation, require
from xnai.domain.errors import NotFoundError
from xnai.domain.models import Document
from xnai.domain.rbac import Permission, Principal
from xnai.services.access import AccessService
from xnai.services.ingestion import IngestionService
from xnai.services.knowledge import KnowledgeBase
from xnai.services.sources import MAX_NAME_BYTES, safe_name

__all__ = ["MAX_NAME_BYTES", "router", "safe_name"]

router = APIRouter(tags=["documents"], responses=SIGNED_IN)


@router.get("/v1/documents", dependencies=[require(Permission.READ_DOCUMENTS)])
async def list_documents(
    kb: KnowledgeDep, access: AccessDep, principal: PrincipalDep
) -> dict[str, Any]:
    """The documents of the committed generation that the caller may read."""
    snap = kb.snapshot
    readable = await run_in_threadpool(access.visible, principal, snap.documents.values())
    docs = sorted(readable, key=lambda d: d.source)
    return {"generation": snap.generation, "documents": [d.summary() for d in docs]}


@router.delete(
    "/v1/documents/{doc_id}",
    dependencies=[require(Permission.DELETE_DOCUMENTS)],
    responses=errors(404, 409),
)
async def delete_document(
    doc_id: str,
    request: Request,
    kb: KnowledgeDep,
    access: AccessDep,
    ingestion: IngestionDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    """Remove a document from every index (one the caller may read and write)."""
    ip = client_ip(request)
    doc = await run_in_threadpool(_remove, kb, access, ingestion, doc_id, principal, ip)
    return {"deleted": doc.summary()}


def _remove(
    kb: KnowledgeBase,
    access: AccessService,
    ingestion: IngestionService,
    ref: str,
    principal: Principal,
    source_ip: str | None,
) -> Document:
    """Remove a document by id or source; unreadable ones are reported as unknown."""
    found = kb.find(ref)
    if found is None:
        raise NotFoundError(f"no document with id or source {ref!r}")
    access.check_remove(principal, found)
    return ingestion.remove_document(found.doc_id, principal=principal, source_ip=source_ip)


@router.post(
    "/v1/documents",
    status_code=201,
    dependencies=[require(Permission.WRITE_DOCUMENTS)],
    responses=errors(400, 404, 409),
)
async def upload_documents(
    request: Request,
    files: list[UploadFile],
    access: AccessDep,
    ingestion: IngestionDep,
    principal: PrincipalDep,
    collection: Annotated[str, Form()] = "default",
) -> dict[str, Any]:
    """Ingest uploaded files into a collection the caller may write; each gets its own
    result, failures do not stop the batch."""
    await run_in_threadpool(access.check_write, principal, collection)
    uploads = []
    for f in files:
        name = safe_name(f.filename)
        # Read one byte past the limit: enough to know it is too large, no more.
        uploads.append((name, await f.read(ingestion.max_file_bytes + 1)))
    ingest = partial(
        ingestion.ingest_uploads,
        uploads,
        user=principal.user_id,
        collection=collection,
        principal=principal,
        source_ip=client_ip(request),
    )
    report = await run_in_threadpool(ingest)
    if report.failed:  # refused by the size, type or content checks, or unreadable
        count_violation(request, "invalid_upload", len(report.failed))
    failed = access.hide_failures(principal, report.failed)
    return {
        "added": list(report.added),
        "replaced": list(report.replaced),
        "unchanged": list(report.unchanged),
        "failed": [{"source": s, "error": e} for s, e in failed],
        "generation": report.generation,
    }
