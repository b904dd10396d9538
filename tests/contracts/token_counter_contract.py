"""Behaviour every TokenCounter must share; subclass and override the `counter` fixture."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

import pytest

from xnai.domain.ports import TokenCounter

TEXTS = [
    "",
    "hello",
    "hello world",
    "hello world, this is a longer sentence about libraries.",
    "hello world, this is a longer sentence about libraries. " * 20,
]


class TokenCounterContract:
    """Mixin of contract tests; a `Test...` subclass supplies `counter`."""

    #: Tokens an empty text counts as (an estimate for a remote tokenizer may round up).
    empty_count: ClassVar[int] = 0

    @pytest.fixture
    def counter(self) -> TokenCounter:
        """The adapter under test (subclasses override this fixture)."""
        pytest.fail("TokenCounterContract subclasses must override the `counter` fixture")

    def test_satisfies_the_port(self, counter: TokenCounter) -> None:
        assert isinstance(counter, TokenCounter)

    def test_empty_text_has_no_tokens(self, counter: TokenCounter) -> None:
        assert counter.count_tokens("") == self.empty_count

    def test_counts_grow_with_the_text(self, counter: TokenCounter) -> None:
        counts = [counter.count_tokens(t) for t in TEXTS]
        assert all(isinstance(c, int) and c >= 0 for c in counts)
        assert counts == sorted(counts) and counts[-1] > counts[1] > counts[0]

    def test_repeating_a_text_roughly_multiplies_its_count(self, counter: TokenCounter) -> None:
        one = counter.count_tokens(TEXTS[3])
        assert 15 * one <= counter.count_tokens(TEXTS[3] + " " + TEXTS[4]) <= 25 * one

    def test_counting_is_deterministic_across_threads(self, counter: TokenCounter) -> None:
        serial = [counter.count_tokens(t) for t in TEXTS * 4]
        with ThreadPoolExecutor(max_workers=4) as pool:
            assert list(pool.map(counter.count_tokens, TEXTS * 4)) == serial
