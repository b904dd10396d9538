"""OpenAIChatModel against a real OpenAI-compatible SSE server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from tests.contracts.chat_model_contract import ChatModelContract
from tests.contracts.token_counter_contract import TokenCounterContract
from xnai.adapters.llm.openai_http import OpenAIChatModel
from xnai.domain.errors import ModelError, ModelUnavailableError
from xnai.domain.models import ChatMessage
from xnai.domain.ports import ChatModel, TokenCounter

RECEIVED: list[tuple[dict[str, str], dict[str, Any]]] = []


def _chunk(delta: dict[str, str], finish: str | None = None) -> str:
    event = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "model": "echo",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(event)}\n\n"


async def _echo_events(body: dict[str, Any]) -> AsyncIterator[str]:
    """Role chunk, one chunk per word of the echo (up to max_tokens), a comment, [DONE]."""
    words = f"You said: {body['messages'][-1]['content']}".split(" ")
    yield _chunk({"role": "assistant"})
    yield ": keep-alive comment\n\n"
    for i, word in enumerate(words[: body["max_tokens"]]):
        yield _chunk({"content": word if i == 0 else " " + word})
    yield _chunk({}, finish="stop")
    yield "data: [DONE]\n\n"
    yield _chunk({"content": "never read"})


def make_app() -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body = await request.json()
        RECEIVED.append((dict(request.headers), body))
        model = body["model"]
        if model == "boom":
            return JSONResponse({"error": {"message": "kaboom inside"}}, status_code=500)
        if model == "bad":
            return JSONResponse({"error": {"message": "unknown model 'bad'"}}, status_code=400)
        if model == "loading":
            return JSONResponse({"error": {"message": "model is loading"}}, status_code=503)
        if model == "slow":
            await asyncio.sleep(1.5)
        if model == "garbage":
            return StreamingResponse(iter(["data: {not json\n\n"]), media_type="text/event-stream")
        if model == "in-stream-error":
            event = 'data: {"error": {"message": "out of memory"}}\n\n'
            return StreamingResponse(iter([event]), media_type="text/event-stream")
        return StreamingResponse(_echo_events(body), media_type="text/event-stream")

    return app


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(make_app(), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "test server did not start"
    yield f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def client(base_url: str, model: str = "echo", **kwargs: Any) -> OpenAIChatModel:
    return OpenAIChatModel(base_url=base_url, model=model, timeout_s=5.0, **kwargs)


def ask(model: OpenAIChatModel, text: str = "hello there", max_tokens: int = 50) -> str:
    return "".join(model.stream([ChatMessage("user", text)], max_tokens=max_tokens))


class TestOpenAIContract(ChatModelContract):
    @pytest.fixture
    def model(self, base_url: str) -> ChatModel:
        return client(base_url)


def test_streams_content_deltas_until_done(base_url: str) -> None:
    pieces = list(client(base_url).stream([ChatMessage("user", "one two three")], max_tokens=50))
    assert pieces == ["You", " said:", " one", " two", " three"]


def test_sends_an_openai_request(base_url: str) -> None:
    model = client(base_url + "/", api_key="sk-test")
    messages = [ChatMessage("system", "be brief"), ChatMessage("user", "hi")]
    "".join(model.stream(messages, max_tokens=7, temperature=0.3, stop=["\n\n"]))
    headers, body = RECEIVED[-1]
    assert headers["authorization"] == "Bearer sk-test"
    assert body == {
        "model": "echo",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "stream": True,
        "max_tokens": 7,
        "temperature": 0.3,
        "stop": ["\n\n"],
    }


def test_no_authorization_header_without_key(base_url: str) -> None:
    ask(client(base_url))
    assert "authorization" not in RECEIVED[-1][0]


def test_http_500_is_a_model_error_with_status_and_body(base_url: str) -> None:
    with pytest.raises(ModelError, match="HTTP 500.*kaboom inside") as info:
        ask(client(base_url, "boom"))
    assert not isinstance(info.value, ModelUnavailableError)


def test_http_400_is_a_model_error(base_url: str) -> None:
    with pytest.raises(ModelError, match="HTTP 400.*unknown model") as info:
        ask(client(base_url, "bad"))
    assert not isinstance(info.value, ModelUnavailableError)


def test_http_503_means_unavailable(base_url: str) -> None:
    with pytest.raises(ModelUnavailableError, match="HTTP 503"):
        ask(client(base_url, "loading"))


def test_invalid_json_event_is_a_model_error(base_url: str) -> None:
    with pytest.raises(ModelError, match="invalid JSON"):
        ask(client(base_url, "garbage"))


def test_error_object_in_the_stream_is_a_model_error(base_url: str) -> None:
    with pytest.raises(ModelError, match="out of memory"):
        ask(client(base_url, "in-stream-error"))


def test_read_timeout_means_unavailable(base_url: str) -> None:
    model = OpenAIChatModel(base_url=base_url, model="slow", timeout_s=0.3)
    with pytest.raises(ModelUnavailableError, match="ReadTimeout"):
        ask(model)


def test_connection_refused_means_unavailable() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens on this port now
    model = OpenAIChatModel(base_url=f"http://127.0.0.1:{port}/v1", model="x", timeout_s=2.0)
    with pytest.raises(ModelUnavailableError, match="cannot reach"):
        ask(model)


def test_count_tokens_is_a_character_estimate(base_url: str) -> None:
    model = client(base_url)
    assert model.count_tokens("") == 1
    assert model.count_tokens("x" * 400) == 101
    assert (model.name, model.context_size) == ("echo", 4096)


class TestOpenAITokenCounterContract(TokenCounterContract):
    # The server's tokenizer is remote: the client estimates, and rounds an empty text up.
    empty_count = 1

    @pytest.fixture
    def counter(self, base_url: str) -> TokenCounter:
        return client(base_url)
