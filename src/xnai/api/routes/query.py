"""POST /v1/query (and its alias /query): answers with citations, JSON or SSE."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from xnai.api.deps import ContainerDep
from xnai.api.metrics import QueryMetricsDep
from xnai.api.schemas import QueryRequest, QueryResponse
from xnai.api.security import PrincipalDep, require
from xnai.bootstrap import Container
from xnai.domain.models import Answer, SearchMode
from xnai.domain.rbac import Permission, Principal
from xnai.services.answer import Done, Prepared, Token
from xnai.services.answer_cache import NoAdmission, cached_answer

router = APIRouter(tags=["query"])


def prepare(c: Container, body: QueryRequest, principal: Principal) -> Prepared:
    """Retrieval (within what ``principal`` may read) and prompt, defaults from config."""
    return c.answers.prepare(
        body.query,
        scope=c.access.scope_for(principal),
        mode=_mode(body),
        top_k=body.top_k,
        max_tokens=body.max_tokens,
    )


def cached(c: Container, body: QueryRequest, principal: Principal) -> Prepared | None:
    """The cached answer of the question, if there is one: no retrieval, no model."""
    return cached_answer(
        c.answers,
        body.query,
        scope=c.access.scope_for(principal),
        mode=_mode(body),
        top_k=body.top_k,
        max_tokens=body.max_tokens,
    )


def retrieval_only(
    c: Container,
    body: QueryRequest,
    principal: Principal,
    started: float,
    record: Callable[[Answer], None] = lambda _: None,
) -> dict[str, Any]:
    """Sources without generation: the answer text is empty."""
    citations, retrieval_ms = c.answers.sources(
        body.query, scope=c.access.scope_for(principal), mode=_mode(body), top_k=body.top_k
    )
    answer = Answer("", citations, c.model.name, retrieval_ms, 0.0, grounded=bool(citations))
    record(answer)
    return payload(answer, started)


def _mode(body: QueryRequest) -> SearchMode | None:
    return SearchMode(body.mode) if body.mode else None


def payload(answer: Answer, started: float) -> dict[str, Any]:
    """The JSON body of an answer."""
    return {
        "response": answer.text,
        "sources": [c.as_dict() for c in answer.citations],
        "metadata": {
            "processing_time": round(time.perf_counter() - started, 4),
            "retrieval_ms": round(answer.retrieval_ms, 2),
            "generation_ms": round(answer.generation_ms, 2),
            "model": answer.model,
            "grounded": answer.grounded,
        },
    }


def sse(event: str, data: dict[str, Any]) -> str:
    """One server-sent event."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _events(
    c: Container, prepared: Prepared, started: float, record: Callable[[Answer], None]
) -> Iterator[str]:
    try:
        for event in c.answers.stream(prepared):
            if isinstance(event, Token):
                yield sse("token", {"text": event.text})
            elif isinstance(event, Done):
                record(event.answer)
                yield sse("done", payload(event.answer, started))
    except Exception as exc:  # headers are sent: report in-band, never a broken stream
        yield sse("error", {"error": str(exc) or type(exc).__name__})


@router.post(
    "/v1/query",
    response_model=QueryResponse,
    dependencies=[require(Permission.EXECUTE_QUERIES)],
)
@router.post(
    "/query",
    response_model=QueryResponse,
    include_in_schema=False,
    dependencies=[require(Permission.EXECUTE_QUERIES)],
)
async def query(
    body: QueryRequest, c: ContainerDep, principal: PrincipalDep, qm: QueryMetricsDep
) -> Any:
    """Answer a question from the documents the caller may read."""
    started = time.perf_counter()
    intent = "answer" if body.generate else "retrieval"
    record = qm.recorder(started, intent=intent, mode=body.mode, generate=body.generate)
    if not body.generate:
        return await run_in_threadpool(retrieval_only, c, body, principal, started, record)
    prepared = await run_in_threadpool(cached, c, body, principal)  # needs no model, no queue
    # Else 503 (breaker open) or 429 (queue full) at once.
    admission = c.generation.admit() if prepared is None else NoAdmission()
    if prepared is None:
        prepared = await run_in_threadpool(admission.hold, prepare, c, body, principal)
    if body.stream:
        return StreamingResponse(
            admission.bind(_events(c, prepared, started, record)),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    answer = await run_in_threadpool(admission.run, c.answers.complete, prepared)
    record(answer)
    return payload(answer, started)
