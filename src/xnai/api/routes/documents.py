"""The library: list, upload and delete documents."""

from __future__ import annotations

from functools import partial
from pathlib import PurePath
from typing import Any

from fastapi import APIRouter, UploadFile
from starlette.concurrency import run_in_threadpool

from xnai.api.deps import ContainerDep
from xnai.domain.errors import XnaiError
from xnai.domain.models import Document

router = APIRouter(tags=["documents"])


def _doc(d: Document) -> dict[str, Any]:
    return {
        "doc_id": d.doc_id,
        "title": d.title,
        "source": d.source,
        "sha256": d.sha256,
        "size": d.size,
        "mime": d.mime,
        "ingested_at": d.ingested_at,
        "ingested_by": d.ingested_by,
        "chunks": len(d.chunk_ids),
        "collection": d.collection,
    }


@router.get("/v1/documents")
async def list_documents(c: ContainerDep) -> dict[str, Any]:
    """Every document of the committed generation."""
    snap = c.kb.snapshot
    docs = sorted(snap.documents.values(), key=lambda d: d.source)
    return {"generation": snap.generation, "documents": [_doc(d) for d in docs]}


@router.delete("/v1/documents/{doc_id}")
async def delete_document(doc_id: str, c: ContainerDep) -> dict[str, Any]:
    """Remove a document from every index."""
    doc = await run_in_threadpool(c.kb.remove, doc_id)
    return {"deleted": _doc(doc)}


@router.post("/v1/documents", status_code=201)
async def upload_documents(files: list[UploadFile], c: ContainerDep) -> dict[str, Any]:
    """Ingest uploaded files; each gets its own result, failures do not stop the batch."""
    uploads = []
    for f in files:
        name = safe_name(f.filename)
        # Read one byte past the limit: enough to know it is too large, no more.
        uploads.append((name, await f.read(c.max_file_bytes + 1)))
    report = await run_in_threadpool(partial(c.ingest_uploads, uploads, user="api"))
    return {
        "added": list(report.added),
        "replaced": list(report.replaced),
        "unchanged": list(report.unchanged),
        "failed": [{"source": s, "error": e} for s, e in report.failed],
        "generation": report.generation,
    }


def safe_name(filename: str | None) -> str:
    """The base name of an uploaded file; refuses names that are empty or only dots."""
    name = PurePath((filename or "").replace("\\", "/")).name.strip()
    if not name.strip("."):
        raise XnaiError(f"invalid upload file name {filename!r}")
    return name
