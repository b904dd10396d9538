"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from xnai import __version__
from xnai.api.deps import ContainerDep
from xnai.api.security import public

router = APIRouter(tags=["health"])


@router.get("/health", dependencies=[public()])
async def health() -> dict[str, str]:
    """The process is up (never touches the model or the index)."""
    return {"status": "ok", "version": __version__}


@router.get("/ready", dependencies=[public()])
async def ready(c: ContainerDep) -> JSONResponse:
    """200 when the index and the model are loaded, else 503 with each component's state."""
    state = c.readiness
    components: dict[str, Any] = {
        "index": {
            "ready": state.index_ready,
            "generation": c.kb.snapshot.generation if state.index_ready else None,
        },
        "llm": {"ready": c.model.loaded, "model": c.model.name, "error": state.model_error},
    }
    ok = state.index_ready and c.model.loaded
    body = {"status": "ready" if ok else "starting", "components": components}
    if state.model_error:
        body["status"] = "degraded"
    return JSONResponse(
        body, status_code=200 if ok else 503, headers=None if ok else {"Retry-After": "5"}
    )
