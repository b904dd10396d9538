"""POST /v1/query (and its alias /query): answers with citations, JSON or SSE."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from xnai.api.deps import AskDep
from xnai.api.openapi import EVENT_STREAM, SIGNED_IN, errors
from xnai.api.schemas import QueryRequest, QueryResponse
from xnai.api.security import PrincipalDep, require
from xnai.domain.models import SearchMode
from xnai.domain.rbac import Permission, Principal
from xnai.services.answer import Done, Token
from xnai.services.ask import Asked, Asker, Question, answer_json, sources_json

router = APIRouter(tags=["query"], responses=SIGNED_IN)
# The model may be busy (429), failing (502) or unavailable (503, also the circuit breaker).
ASKING = errors(429, 502)


def question_of(body: QueryRequest) -> Question:
    """The question of a request; what it leaves open comes from the answer policy."""
    mode = SearchMode(body.mode) if body.mode else None
    return Question(body.query, mode=mode, top_k=body.top_k, max_tokens=body.max_tokens)


def asker_of(body: QueryRequest, principal: Principal) -> Asker:
    """The caller, with the query's intent for the metrics."""
    return Asker(principal, "api", "answer" if body.generate else "retrieval")


def sse(event: str, data: dict[str, Any]) -> str:
    """One server-sent event."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _events(asked: Asked, started: float) -> Iterator[str]:
    # Where the answer will come from, as soon as retrieval is done: before the model has
    # read the prompt, which on a CPU takes seconds.
    yield sse("sources", sources_json(asked, time.perf_counter() - started))
    try:
        for event in asked.events():
            if isinstance(event, Token):
                yield sse("token", {"text": event.text})
            elif isinstance(event, Done):
                yield sse("done", answer_json(event.answer, time.perf_counter() - started))
    except Exception as exc:  # headers are sent: report in-band, never a broken stream
        yield sse("error", {"error": str(exc) or type(exc).__name__})


@router.post(
    "/v1/query",
    response_model=QueryResponse,
    dependencies=[require(Permission.EXECUTE_QUERIES)],
    responses={200: {"content": EVENT_STREAM}, **ASKING},
)
@router.post(
    "/query",
    response_model=QueryResponse,
    include_in_schema=False,
    dependencies=[require(Permission.EXECUTE_QUERIES)],
)
async def query(body: QueryRequest, ask: AskDep, principal: PrincipalDep) -> Any:
    """Answer a question from the documents the caller may read."""
    started = time.perf_counter()
    question, asker = question_of(body), asker_of(body, principal)
    if not body.generate:  # sources only: no model, no queue
        answer = await run_in_threadpool(ask.sources, question, asker)
        return answer_json(answer, time.perf_counter() - started)
    # 503 (breaker open) or 429 (queue full) at once, unless the answer is cached.
    asked = await run_in_threadpool(ask.ask, question, asker)
    if body.stream:
        return StreamingResponse(
            _events(asked, started),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    answer = await run_in_threadpool(asked.complete)
    return answer_json(answer, time.perf_counter() - started)
