"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from xnai import __version__
from xnai.api import readiness
from xnai.api.deps import ProbeDep
from xnai.api.openapi import STATUSES, Readiness, errors
from xnai.api.security import bearer_token, public, verify
from xnai.domain.rbac import Permission

router = APIRouter(tags=["health"])


@router.get("/health", dependencies=[public()], responses=errors(413))
async def health() -> dict[str, str]:
    """The process is up (never touches the model or the index)."""
    return {"status": "ok", "version": __version__}


@router.get(
    "/ready",
    dependencies=[public()],
    responses={
        **errors(413),
        200: {"model": Readiness, "description": "ready, or degraded but serving"},
        503: {
            "model": Readiness,
            "description": "starting, or a component the service needs fails",
            "headers": STATUSES[503][1],
        },
    },
)
async def ready(request: Request, probe: ProbeDep) -> JSONResponse:
    """200 when the index, the database and the model are ready (``degraded`` when only Redis
    or the model's breaker fails), else 503; each component's status, and its details for
    callers with ``read:metrics`` (see api/readiness.py)."""
    components = await readiness.components(probe)
    status, code = readiness.verdict(components)
    shown = components if await _may_see_details(request) else readiness.public_view(components)
    body = {"status": status, "components": shown}
    ok = code == 200
    return JSONResponse(
        body, status_code=200 if ok else 503, headers=None if ok else {"Retry-After": "5"}
    )


async def _may_see_details(request: Request) -> bool:
    if bearer_token(request) is None:
        return False
    try:
        auth = await verify(request)
    except Exception:  # a wrong token, or a database that is down: the anonymous view
        return False
    return not auth.restricted and auth.principal.can(Permission.READ_METRICS)
