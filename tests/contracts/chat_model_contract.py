"""Behaviour every ChatModel adapter must share; subclass and override the `model` fixture."""

from __future__ import annotations

import pytest

from xnai.domain.models import ChatMessage
from xnai.domain.ports import ChatModel

LONG_ASK = [ChatMessage("user", "Write a long story about a dragon who learns to cook.")]


class ChatModelContract:
    """Mixin of contract tests; a `Test...` subclass supplies `model`."""

    @pytest.fixture
    def model(self) -> ChatModel:
        """The adapter under test (subclasses override this fixture)."""
        pytest.fail("ChatModelContract subclasses must override the `model` fixture")

    def test_satisfies_the_port(self, model: ChatModel) -> None:
        assert isinstance(model, ChatModel)
        assert isinstance(model.name, str) and model.name
        assert isinstance(model.context_size, int) and model.context_size > 0

    def test_stream_yields_text_pieces(self, model: ChatModel) -> None:
        messages = [
            ChatMessage("system", "You are a helpful assistant."),
            ChatMessage("user", "Say hello to the reader in one short sentence."),
        ]
        pieces = list(model.stream(messages, max_tokens=24, temperature=0.0))
        assert pieces, "stream yielded nothing"
        assert all(isinstance(piece, str) for piece in pieces)
        assert "".join(pieces).strip()

    def test_stream_is_an_iterator(self, model: ChatModel) -> None:
        stream = model.stream(LONG_ASK, max_tokens=2)
        assert iter(stream) is stream
        assert isinstance(next(stream), str)

    def test_max_tokens_is_respected_roughly(self, model: ChatModel) -> None:
        text = "".join(model.stream(LONG_ASK, max_tokens=5, temperature=0.0))
        # Re-tokenising the output may differ slightly from the generated token count.
        assert model.count_tokens(text) <= 2 * 5 + 2, text

    def test_count_tokens_grows_with_text(self, model: ChatModel) -> None:
        texts = [
            "",
            "hello",
            "hello world",
            "hello world, this is a longer sentence about libraries.",
            "hello world, this is a longer sentence about libraries. " * 20,
        ]
        counts = [model.count_tokens(text) for text in texts]
        assert all(isinstance(c, int) and c >= 0 for c in counts)
        assert counts == sorted(counts), counts
        assert counts[-1] > counts[1]
