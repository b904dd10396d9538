"""FakeChatModel: deterministic grounded replies, scripting and scripted failures."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest

from tests.contracts.chat_model_contract import ChatModelContract
from tests.contracts.token_counter_contract import TokenCounterContract
from xnai.adapters.memory.llm import NOT_FOUND, FakeChatModel, first_sentence, numbered_sources
from xnai.domain.errors import ModelUnavailableError
from xnai.domain.models import ChatMessage
from xnai.domain.ports import ChatModel, TokenCounter

PROMPT = '''Answer from the sources below and cite them like [1].

[1] Cats (library/cats.md)
"""
Cats sleep about sixteen hours a day. They are most active at dusk.
"""

[2] Dogs (library/dogs.md)
"""
Dogs bark at strangers.
"""

Question: How long do cats sleep?'''


def ask(model: ChatModel, content: str, stop: Sequence[str] = ()) -> str:
    return "".join(model.stream([ChatMessage("user", content)], max_tokens=256, stop=stop))


class TestFakeContract(ChatModelContract):
    @pytest.fixture
    def model(self) -> ChatModel:
        return FakeChatModel()


def test_answers_with_first_sentence_of_source_one() -> None:
    assert ask(FakeChatModel(), PROMPT) == "Cats sleep about sixteen hours a day. [1]"


def test_tagged_sources_are_understood() -> None:
    prompt = (
        "Sources:\n\n"
        '<source id="1" title="Cats">\n# Cats\n\nCats sleep a lot. They purr.\n</source>\n\n'
        '<source id="2" title="Dogs">\nDogs bark.\n</source>\n\n'
        "Question: Do cats sleep? [1]\nAnswer from the sources and cite them like [1]."
    )
    assert ask(FakeChatModel(), prompt) == "Cats sleep a lot. [1]"


def test_single_line_sources_are_understood() -> None:
    prompt = 'Sources:\n[1] "The Eiffel Tower is in Paris. It is tall."\n[2] "Rome is old."'
    assert ask(FakeChatModel(), prompt) == "The Eiffel Tower is in Paris. [1]"


def test_lowest_numbered_source_when_one_is_absent() -> None:
    prompt = "[3] Notes\nWater boils at 100 degrees. Mostly.\n\nQuestion: when?"
    assert ask(FakeChatModel(), prompt) == "Water boils at 100 degrees. [3]"


def test_without_sources_it_says_so() -> None:
    assert ask(FakeChatModel(), "What is the meaning of life?") == NOT_FOUND


def test_only_the_last_user_message_counts() -> None:
    messages = [
        ChatMessage("system", "[1] System text. Not a source."),
        ChatMessage("user", PROMPT),
        ChatMessage("assistant", "Cats sleep a lot. [1]"),
        ChatMessage("user", "And what about birds?"),
    ]
    assert "".join(FakeChatModel().stream(messages, max_tokens=50)) == NOT_FOUND


def test_streams_word_by_word_and_honours_max_tokens() -> None:
    model = FakeChatModel()
    pieces = list(model.stream([ChatMessage("user", PROMPT)], max_tokens=100))
    assert pieces == re.findall(r"\s*\S+", "Cats sleep about sixteen hours a day. [1]")
    assert len(list(model.stream([ChatMessage("user", PROMPT)], max_tokens=3))) == 3


def test_stop_sequences_cut_the_reply() -> None:
    assert ask(FakeChatModel(), PROMPT, stop=["hours"]) == "Cats sleep about sixteen"


def test_scripted_reply_sees_the_messages() -> None:
    seen: list[Sequence[ChatMessage]] = []

    def reply(messages: Sequence[ChatMessage]) -> str:
        seen.append(messages)
        return "scripted answer"

    model = FakeChatModel(reply=reply)
    assert ask(model, "hi") == "scripted answer"
    assert seen[0][-1].content == "hi"
    assert model.calls == [(ChatMessage("user", "hi"),)]


def test_fails_the_first_n_calls_then_recovers() -> None:
    model = FakeChatModel(fail_times=2)
    for _ in range(2):
        with pytest.raises(ModelUnavailableError):
            ask(model, PROMPT)
    assert ask(model, PROMPT).endswith("[1]")
    assert len(model.calls) == 3


def test_count_tokens_formula() -> None:
    model = FakeChatModel()
    assert model.count_tokens("") == 1
    assert model.count_tokens("one two three") == 5
    assert model.count_tokens("a " * 30) == 41


def test_name_and_context_size_are_configurable() -> None:
    model = FakeChatModel(name="demo", context_size=512)
    assert (model.name, model.context_size) == ("demo", 512)


def test_helpers() -> None:
    assert numbered_sources("[1] A\nFirst line.\n[2] B\nSecond.") == {
        1: "First line.",
        2: "Second.",
    }
    assert first_sentence("No end mark here") == "No end mark here"
    assert first_sentence("Dr Who? Yes.") == "Dr Who?"


class TestFakeTokenCounterContract(TokenCounterContract):
    # The fake estimates from words and, like a chat prompt's framing, counts one extra.
    empty_count = 1

    @pytest.fixture
    def counter(self) -> TokenCounter:
        return FakeChatModel()
