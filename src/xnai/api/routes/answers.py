"""GET /v1/answers/{answer_id}/bundle: the signed bundle of an answer, for its asker only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from xnai.api.deps import AnswerBundlesDep
from xnai.api.openapi import SIGNED_IN, ErrorBody
from xnai.api.security import PrincipalDep, require
from xnai.domain.rbac import Permission

router = APIRouter(tags=["answers"], responses=SIGNED_IN)


@router.get(
    "/v1/answers/{answer_id}/bundle",
    dependencies=[require(Permission.EXECUTE_QUERIES)],
    responses={
        404: {"model": ErrorBody, "description": "no answer of this id was given to the caller"}
    },
)
async def answer_bundle(answer_id: str, bundles: AnswerBundlesDep, principal: PrincipalDep) -> Any:
    """The signed bundle of one of the caller's answers (``xnai verify-answer`` checks it).
    Anybody else, other users and admins included, gets 404, as for an unknown id."""
    bundle = await run_in_threadpool(bundles.bundle_for, answer_id, principal.user_id)
    return JSONResponse(
        bundle.as_dict(),
        headers={"Content-Disposition": 'attachment; filename="answer-bundle.json"'},
    )
