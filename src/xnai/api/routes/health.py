"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from xnai import __version__
from xnai.api import readiness
from xnai.api.deps import ProbeDep
from xnai.api.security import public

router = APIRouter(tags=["health"])


@router.get("/health", dependencies=[public()])
async def health() -> dict[str, str]:
    """The process is up (never touches the model or the index)."""
    return {"status": "ok", "version": __version__}


@router.get("/ready", dependencies=[public()])
async def ready(probe: ProbeDep) -> JSONResponse:
    """200 when the index, the database and the model are ready (``degraded`` when only Redis
    or the model's breaker fails), else 503; each component's state (see api/readiness.py)."""
    components = await readiness.components(probe)
    status, code = readiness.verdict(components)
    body = {"status": status, "components": components}
    ok = code == 200
    return JSONResponse(
        body, status_code=200 if ok else 503, headers=None if ok else {"Retry-After": "5"}
    )
