"""chunk_text: token limits, exact spans, sections, overlap, determinism and linear cost."""

from __future__ import annotations

import random
import re

import pytest

from xnai.domain.models import ChunkSpan
from xnai.domain.ports import TokenCounter
from xnai.services.chunking import CHUNKER_VERSION, chunk_text


class WordCounter:
    """One token per whitespace-separated word."""

    def count_tokens(self, text: str) -> int:
        return len(text.split())


class CharCounter:
    """One token per character, whitespace included."""

    def count_tokens(self, text: str) -> int:
        return len(text)


class GreedyCounter:
    """Words plus one per eight words: the joined text counts more than its pieces summed."""

    def count_tokens(self, text: str) -> int:
        words = len(text.split())
        return words + words // 8


class MeteredCounter(CharCounter):
    """Character counter that records how much text it was asked to count."""

    def __init__(self) -> None:
        self.counted = 0

    def count_tokens(self, text: str) -> int:
        self.counted += len(text)
        return super().count_tokens(text)


DOC = (
    """Preface before any heading. It has two sentences.

# Install

Download the archive. Unpack it somewhere sensible! Does it work? It should.

## Linux

Run the installer script from a terminal and answer the questions it asks you about paths.
Then reboot the machine, log in again and check the service status with the status command.

```
# this is a comment, not a heading
make install
```

## Windows
Double click setup.exe and follow the wizard until it finishes.

# Usage

"""
    + " ".join(f"word{i}" for i in range(60))
    + """

Averyveryverylongtokenwithoutanyspacesatallthatgoesonandonandonforeverandeverandever.
"""
)

HEADING_LINE = re.compile(r"^#{1,6} ", re.M)
COUNTERS: list[tuple[TokenCounter, int, int]] = [
    (WordCounter(), 12, 3),
    (WordCounter(), 40, 8),
    (CharCounter(), 60, 15),
    (CharCounter(), 200, 0),
    (GreedyCounter(), 10, 4),
]


def chunk(text: str, counter: TokenCounter, max_tokens: int, overlap: int) -> list[ChunkSpan]:
    return chunk_text(text, counter, max_tokens=max_tokens, overlap=overlap)


def assert_well_formed(
    text: str, chunks: list[ChunkSpan], counter: TokenCounter, limit: int
) -> None:
    """Exact spans, token limit, ordinals, trimmed non-empty text, full coverage."""
    covered = bytearray(len(text))
    for ordinal, piece in enumerate(chunks):
        assert text[piece.start : piece.end] == piece.text
        assert counter.count_tokens(piece.text) <= limit
        assert piece.ordinal == ordinal
        assert piece.text and piece.text == piece.text.strip()
        covered[piece.start : piece.end] = b"\x01" * (piece.end - piece.start)
    uncovered = "".join(char for char, seen in zip(text, covered, strict=True) if not seen)
    assert not uncovered.strip()


def test_version() -> None:
    assert CHUNKER_VERSION == "1"


@pytest.mark.parametrize(("counter", "max_tokens", "overlap"), COUNTERS)
def test_spans_are_exact_and_token_limits_hold(
    counter: TokenCounter, max_tokens: int, overlap: int
) -> None:
    chunks = chunk(DOC, counter, max_tokens, overlap)
    assert len(chunks) > 5
    assert_well_formed(DOC, chunks, counter, max_tokens)


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t \n"])
def test_blank_text_has_no_chunks(text: str) -> None:
    assert chunk(text, WordCounter(), 10, 2) == []


def test_small_text_is_one_trimmed_chunk() -> None:
    text = "\n\n  Hello there. General Kenobi!  \n"
    assert chunk(text, WordCounter(), 50, 10) == [
        ChunkSpan(ordinal=0, start=4, end=32, text="Hello there. General Kenobi!", heading="")
    ]


def test_heading_paths_and_code_fence_comments() -> None:
    chunks = chunk(DOC, WordCounter(), 40, 8)
    assert [c.heading for c in chunks] == ["", "Install", "Install > Linux", "Install > Linux"] + [
        "Install > Windows"
    ] + ["Usage"] * (len(chunks) - 5)
    assert any("# this is a comment, not a heading" in c.text for c in chunks)


@pytest.mark.parametrize(("counter", "max_tokens", "overlap"), COUNTERS)
def test_chunks_never_span_two_sections(
    counter: TokenCounter, max_tokens: int, overlap: int
) -> None:
    fence = range(DOC.index("```"), DOC.rindex("```"))
    for piece in chunk(DOC, counter, max_tokens, overlap):
        # A heading line (outside the code fence) may only open a chunk, never appear inside it.
        found = HEADING_LINE.finditer(DOC, piece.start, piece.end)
        starts = [m.start() for m in found if m.start() not in fence]
        assert starts in ([], [piece.start])


def test_heading_without_body_joins_its_first_subsection() -> None:
    text = "# Install\n\n## Linux\n\nRun it.\n\n## Mac\n\nOpen it."
    assert chunk(text, WordCounter(), 50, 5) == [
        ChunkSpan(0, 0, 28, "# Install\n\n## Linux\n\nRun it.", "Install > Linux"),
        ChunkSpan(1, 30, 46, "## Mac\n\nOpen it.", "Install > Mac"),
    ]


def test_closing_hashes_and_deeper_levels_in_heading_path() -> None:
    text = "# A #\nx\n### C ###\ny\n## B\nz"
    assert [c.heading for c in chunk(text, WordCounter(), 50, 0)] == ["A", "A > C", "A > B"]


@pytest.mark.parametrize(("counter", "max_tokens", "overlap"), COUNTERS)
def test_overlap_within_a_section_only(
    counter: TokenCounter, max_tokens: int, overlap: int
) -> None:
    chunks = chunk(DOC, counter, max_tokens, overlap)
    overlaps = 0
    for previous, current in zip(chunks, chunks[1:], strict=False):
        shared = DOC[current.start : previous.end] if current.start < previous.end else ""
        if previous.heading != current.heading or overlap == 0:
            assert shared == ""
            continue
        assert counter.count_tokens(shared) <= overlap
        # Overlap starts at a word boundary.
        assert DOC[current.start - 1].isspace() or not shared
        overlaps += bool(shared)
    assert overlaps > 0 or overlap == 0


def test_overlap_is_taken_from_the_previous_chunk_tail() -> None:
    text = " ".join(f"w{i}" for i in range(30))
    chunks = chunk(text, WordCounter(), 10, 3)
    assert [c.text.split()[0] for c in chunks] == ["w0", "w7", "w14", "w21"]
    assert chunks[1].text == "w7 w8 w9 w10 w11 w12 w13 w14 w15 w16"
    assert all(len(c.text.split()) <= 10 for c in chunks)


def test_sentence_overlap_is_preferred_to_words() -> None:
    text = "One two. Three four. Five six. Seven eight. Nine ten. Eleven twelve."
    chunks = chunk(text, WordCounter(), 6, 2)
    assert [c.text for c in chunks] == [
        "One two. Three four. Five six.",
        "Five six. Seven eight. Nine ten.",
        "Nine ten. Eleven twelve.",
    ]


def test_no_overlap_when_zero() -> None:
    text = " ".join(f"w{i}" for i in range(25))
    chunks = chunk(text, WordCounter(), 10, 0)
    assert [c.text for c in chunks] == [
        " ".join(f"w{i}" for i in range(0, 10)),
        " ".join(f"w{i}" for i in range(10, 20)),
        " ".join(f"w{i}" for i in range(20, 25)),
    ]


def test_chunks_prefer_paragraph_boundaries() -> None:
    first = "Alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu."
    second = "Nu xi omicron pi rho sigma tau upsilon phi chi psi omega."
    chunks = chunk(f"{first}\n\n{second}", WordCounter(), 20, 0)
    assert [c.text for c in chunks] == [first, second]


def test_giant_token_run_is_split_by_characters() -> None:
    run = "x" * 250
    text = f"Short intro.\n\n{run}\n\nShort outro."
    chunks = chunk(text, CharCounter(), 100, 0)
    assert_well_formed(text, chunks, CharCounter(), 100)
    # The first piece counts the blank line in front of the run, so it holds 98 characters.
    assert [c.text for c in chunks] == [
        "Short intro.",
        "x" * 98,
        "x" * 100,
        "x" * 52 + "\n\nShort outro.",
    ]


def test_giant_sentence_is_split_at_words() -> None:
    text = " ".join(["lorem"] * 95) + "."
    chunks = chunk(text, WordCounter(), 30, 0)
    assert [len(c.text.split()) for c in chunks] == [30, 30, 30, 5]


def test_non_additive_counter_still_respects_the_limit() -> None:
    text = "\n\n".join(" ".join(f"t{p}_{i}" for i in range(17)) + "." for p in range(6))
    counter = GreedyCounter()
    assert_well_formed(text, chunk(text, counter, 9, 3), counter, 9)


def test_deterministic() -> None:
    assert chunk(DOC, WordCounter(), 12, 3) == chunk(DOC, WordCounter(), 12, 3)


@pytest.mark.parametrize(("max_tokens", "overlap"), [(0, 0), (10, 10), (10, -1)])
def test_invalid_parameters(max_tokens: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        chunk("text", WordCounter(), max_tokens, overlap)


def big_document(seed: int = 1) -> str:
    """About 600 kB of sections, paragraphs and sentences, plus a giant sentence and run."""
    rng = random.Random(seed)
    words = ["".join(rng.choices("abcdefghij", k=rng.randint(2, 9))) for _ in range(400)]
    parts = []
    for section in range(150):
        parts.append(f"{'#' * rng.randint(1, 3)} Section {section}")
        for _ in range(rng.randint(1, 6)):
            sentences = (
                " ".join(rng.choices(words, k=rng.randint(3, 30))) + "."
                for _ in range(rng.randint(1, 8))
            )
            parts.append(" ".join(sentences))
    parts.append(" ".join(rng.choices(words, k=5000)))
    parts.append("y" * 50_000)
    return "\n\n".join(parts)


def test_cost_is_linear_in_text_length() -> None:
    text = big_document()
    counter = MeteredCounter()
    chunks = chunk(text, counter, 500, 50)
    assert_well_formed(text, chunks, CharCounter(), 500)
    # Each character is counted a small constant number of times, not once per growing chunk.
    assert counter.counted < 6 * len(text)
