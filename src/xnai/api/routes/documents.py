"""The library: list and delete documents."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from xnai.api.deps import ContainerDep
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
