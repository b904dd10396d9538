"""POST /v1/chat/completions: the OpenAI chat shape, answered from the library."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from xnai.api.deps import ContainerDep
from xnai.api.metrics import QueryMetricsDep
from xnai.api.schemas import ChatCompletionRequest
from xnai.api.security import PrincipalDep, require
from xnai.bootstrap import Container
from xnai.domain.errors import XnaiError
from xnai.domain.models import Answer, ChatMessage
from xnai.domain.rbac import Permission, Principal
from xnai.services.answer import Done, Prepared, Token
from xnai.services.answer_cache import NoAdmission, cached_answer

router = APIRouter(tags=["openai"])


def _prepare(c: Container, body: ChatCompletionRequest, principal: Principal) -> Prepared:
    query, options = _question(c, body, principal)
    return c.answers.prepare(query, **options)


def _cached(c: Container, body: ChatCompletionRequest, principal: Principal) -> Prepared | None:
    """The cached answer of the conversation, if there is one: no retrieval, no model."""
    query, options = _question(c, body, principal)
    return cached_answer(c.answers, query, **options)


def _question(
    c: Container, body: ChatCompletionRequest, principal: Principal
) -> tuple[str, dict[str, Any]]:
    """The last user message and how to answer it (scope, length, earlier turns)."""
    users = [m for m in body.messages if m.role == "user"]
    if not users or not users[-1].text().strip():
        raise XnaiError("the conversation needs a user message with text")
    last = users[-1]
    # Earlier turns give the model the thread of the conversation; the caller's own system
    # prompt is dropped so it cannot override the rule that sources are data.
    cut = body.messages.index(last)
    history = [
        ChatMessage(m.role, m.text())
        for m in body.messages[:cut]
        if m.role in ("user", "assistant")
    ]
    return last.text(), {
        "scope": c.access.scope_for(principal),
        "max_tokens": body.max_completion_tokens or body.max_tokens,
        "history": history[-6:],
    }


def _sources(answer: Answer) -> list[dict[str, Any]]:
    return [c.as_dict() for c in answer.citations]


def _completion(answer: Answer, cid: str, created: int) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion",
        "created": created,
        "model": answer.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer.text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        "xnai_sources": _sources(answer),
    }


def _chunk(
    cid: str,
    created: int,
    model: str,
    delta: dict[str, Any],
    finish: str | None = None,
    **extra: Any,
) -> str:
    body = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def _stream(
    c: Container, prepared: Prepared, cid: str, created: int, record: Callable[[Answer], None]
) -> Iterator[str]:
    model = c.model.name
    yield _chunk(cid, created, model, {"role": "assistant", "content": ""})
    try:
        for event in c.answers.stream(prepared):
            if isinstance(event, Token):
                yield _chunk(cid, created, model, {"content": event.text})
            elif isinstance(event, Done):
                record(event.answer)
                yield _chunk(cid, created, model, {}, "stop", xnai_sources=_sources(event.answer))
    except Exception as exc:  # headers are sent: report in-band
        yield f"data: {json.dumps({'error': {'message': str(exc)}})}\n\n"
    yield "data: [DONE]\n\n"


@router.post("/v1/chat/completions", dependencies=[require(Permission.EXECUTE_QUERIES)])
async def chat_completions(
    body: ChatCompletionRequest, c: ContainerDep, principal: PrincipalDep, qm: QueryMetricsDep
) -> Any:
    """OpenAI-compatible chat completion with retrieval (within what the caller may read) on
    the last user message."""
    record = qm.recorder(time.perf_counter(), intent="chat")
    prepared = await run_in_threadpool(_cached, c, body, principal)  # no model, no queue
    # Else 503 (breaker open) or 429 (queue full) at once.
    admission = c.generation.admit() if prepared is None else NoAdmission()
    if prepared is None:
        prepared = await run_in_threadpool(admission.hold, _prepare, c, body, principal)
    cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    if body.stream:
        return StreamingResponse(
            admission.bind(_stream(c, prepared, cid, created, record)),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )
    answer = await run_in_threadpool(admission.run, c.answers.complete, prepared)
    record(answer)
    return _completion(answer, cid, created)


@router.get("/v1/models", dependencies=[require(Permission.EXECUTE_QUERIES)])
async def models(c: ContainerDep) -> dict[str, Any]:
    """The one model this server answers with (OpenAI shape)."""
    return {
        "object": "list",
        "data": [{"id": c.model.name, "object": "model", "created": 0, "owned_by": "xnai"}],
    }
