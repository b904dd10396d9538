"""POST /v1/chat/completions: the OpenAI chat shape, answered from the library."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from xnai.api.deps import AskDep
from xnai.api.openapi import EVENT_STREAM, SIGNED_IN, errors
from xnai.api.schemas import ChatCompletionRequest
from xnai.api.security import PrincipalDep, require
from xnai.domain.errors import XnaiError
from xnai.domain.models import Answer, ChatMessage
from xnai.domain.rbac import Permission
from xnai.services.answer import Done, Token
from xnai.services.ask import Asked, Asker, Question

router = APIRouter(tags=["openai"], responses=SIGNED_IN)


def _question(body: ChatCompletionRequest) -> Question:
    """The last user message and how to answer it (length, earlier turns)."""
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
    return Question(
        last.text(),
        max_tokens=body.max_completion_tokens or body.max_tokens,
        history=tuple(history[-6:]),
    )


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
        "xnai_answer_id": answer.answer_id or None,
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


def _stream(asked: Asked, model: str, cid: str, created: int) -> Iterator[str]:
    yield _chunk(cid, created, model, {"role": "assistant", "content": ""})
    try:
        for event in asked.events():
            if isinstance(event, Token):
                yield _chunk(cid, created, model, {"content": event.text})
            elif isinstance(event, Done):
                yield _chunk(
                    cid,
                    created,
                    model,
                    {},
                    "stop",
                    xnai_sources=_sources(event.answer),
                    xnai_answer_id=event.answer.answer_id or None,
                )
    except Exception as exc:  # headers are sent: report in-band
        yield f"data: {json.dumps({'error': {'message': str(exc)}})}\n\n"
    yield "data: [DONE]\n\n"


@router.post(
    "/v1/chat/completions",
    dependencies=[require(Permission.EXECUTE_QUERIES)],
    responses={200: {"content": EVENT_STREAM}, **errors(429, 502)},
)
async def chat_completions(
    body: ChatCompletionRequest, ask: AskDep, principal: PrincipalDep
) -> Any:
    """OpenAI-compatible chat completion with retrieval (within what the caller may read) on
    the last user message."""
    question = _question(body)
    # 503 (breaker open) or 429 (queue full) at once, unless the answer is cached.
    asked = await run_in_threadpool(ask.ask, question, Asker(principal, "api", "chat"))
    cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    if body.stream:
        return StreamingResponse(
            _stream(asked, ask.model_name, cid, created),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )
    answer = await run_in_threadpool(asked.complete)
    return _completion(answer, cid, created)


@router.get("/v1/models", dependencies=[require(Permission.EXECUTE_QUERIES)])
async def models(ask: AskDep) -> dict[str, Any]:
    """The one model this server answers with (OpenAI shape)."""
    return {
        "object": "list",
        "data": [{"id": ask.model_name, "object": "model", "created": 0, "owned_by": "xnai"}],
    }
