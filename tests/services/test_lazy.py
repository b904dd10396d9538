"""The lazy chat model: loads once, on first use, even from several threads."""

from __future__ import annotations

import threading

from xnai.adapters.memory import FakeChatModel
from xnai.domain.models import ChatMessage
from xnai.services.lazy import LazyChatModel


def test_nothing_loads_until_used_then_once() -> None:
    made: list[FakeChatModel] = []

    def factory() -> FakeChatModel:
        made.append(FakeChatModel(context_size=512))
        return made[-1]

    lazy = LazyChatModel(factory, "configured", 512)
    assert not lazy.loaded and lazy.name == "configured" and lazy.context_size == 512
    threads = [threading.Thread(target=lazy.load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1 and lazy.loaded and lazy.load() is made[0]
    assert lazy.name == made[0].name


def test_it_counts_and_streams_with_the_loaded_model() -> None:
    inner = FakeChatModel(context_size=512, reply=lambda _messages: "pumps hum")
    lazy = LazyChatModel(lambda: inner, "fake", 512)
    assert lazy.count_tokens("two words") == inner.count_tokens("two words")
    text = "".join(lazy.stream([ChatMessage("user", "hi")], max_tokens=16))
    assert text == "pumps hum"
