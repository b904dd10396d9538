"""Split document text into token-bounded, heading-aware chunks with exact character spans."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

from xnai.domain.models import ChunkSpan
from xnai.domain.ports import TokenCounter

CHUNKER_VERSION = "1"

# Strength of the boundary in front of a unit: chunks prefer to end at the strongest one.
_WORD, _SENTENCE, _PARAGRAPH = 0, 1, 2

_FENCE_OR_HEADING = re.compile(
    r"^ {0,3}(?:(?P<fence>`{3,}|~{3,})|(?P<hashes>#{1,6})(?:[ \t]+(?P<title>[^\n]*))?$)", re.M
)
_CLOSING_HASHES = re.compile(r"(?:^|[ \t]+)#+[ \t]*$")
_PARAGRAPH_BREAK = re.compile(r"\n(?:[ \t]*\n)+")
# A sentence ends at terminal punctuation (plus closing quotes) before a space, after CJK
# terminal punctuation, or at a line break (list items, headings and code lines).
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)|[。！？]+[」』”’)]*|\n")
_WORD_RE = re.compile(r"\S+")


@dataclass(frozen=True, slots=True)
class _Section:
    """Text from one heading line up to the next one (the preamble has level 0)."""

    start: int
    body: int
    end: int
    level: int
    path: str


@dataclass(frozen=True, slots=True)
class _Unit:
    """The smallest piece a chunk is built from: a sentence, or a word of a giant sentence."""

    start: int
    end: int
    tokens: int  # counted with the whitespace in front, so sums match the joined text
    level: int


def chunk_text(
    text: str, counter: TokenCounter, *, max_tokens: int, overlap: int
) -> list[ChunkSpan]:
    """Chunks of at most ``max_tokens`` tokens, one section each, overlapping ~``overlap``."""
    if max_tokens < 1 or not 0 <= overlap < max_tokens:
        raise ValueError("need max_tokens >= 1 and 0 <= overlap < max_tokens")
    chunks: list[ChunkSpan] = []
    for section in _sections(text):
        units = _units(text, section, counter, max_tokens)
        for start, end in _pack(text, units, counter, max_tokens, overlap):
            chunks.append(
                ChunkSpan(
                    ordinal=len(chunks),
                    start=start,
                    end=end,
                    text=text[start:end],
                    heading=section.path,
                )
            )
    return chunks


def _sections(text: str) -> list[_Section]:
    """Split at markdown ATX headings outside code fences, tracking the heading path."""
    headings = _headings(text)
    first = headings[0][0] if headings else len(text)
    sections = [_Section(0, 0, first, 0, "")] if text[:first].strip() else []
    stack: list[tuple[int, str]] = []
    for index, (start, body, level, title) in enumerate(headings):
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
        end = headings[index + 1][0] if index + 1 < len(headings) else len(text)
        sections.append(_Section(start, body, end, level, " > ".join(t for _, t in stack)))
    return _merge_bare_parents(text, sections)


def _headings(text: str) -> list[tuple[int, int, int, str]]:
    """(line start, line end, level, title) of every heading line outside code fences."""
    found: list[tuple[int, int, int, str]] = []
    fence = ""
    for match in _FENCE_OR_HEADING.finditer(text):
        marker, hashes = match.group("fence"), match.group("hashes")
        if marker:
            if not fence:
                fence = marker
            elif marker[0] == fence[0] and len(marker) >= len(fence):
                fence = ""
        elif hashes and not fence:
            title = _CLOSING_HASHES.sub("", match.group("title") or "").strip()
            if title:
                found.append((match.start(), match.end(), len(hashes), title))
    return found


def _merge_bare_parents(text: str, sections: list[_Section]) -> list[_Section]:
    """Fold a heading with no body of its own into its first subsection."""
    merged: list[_Section] = []
    carried: int | None = None
    for index, section in enumerate(sections):
        start = section.start if carried is None else carried
        following = sections[index + 1] if index + 1 < len(sections) else None
        bare = section.level > 0 and not text[section.body : section.end].strip()
        if bare and following is not None and following.level > section.level:
            carried = start
            continue
        carried = None
        merged.append(replace(section, start=start))
    return merged


def _spans(
    text: str, start: int, end: int, separator: re.Pattern[str]
) -> Iterator[tuple[int, int]]:
    """Non-blank pieces of ``text[start:end]`` cut after each separator, whitespace trimmed."""
    cut = start
    for match in separator.finditer(text, start, end):
        yield from _trimmed(text, cut, match.end())
        cut = match.end()
    yield from _trimmed(text, cut, end)


def _trimmed(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """The span without its leading and trailing whitespace, unless nothing is left."""
    piece = text[start:end]
    stripped = piece.strip()
    if stripped:
        left = start + len(piece) - len(piece.lstrip())
        yield left, left + len(stripped)


def _units(text: str, section: _Section, counter: TokenCounter, max_tokens: int) -> list[_Unit]:
    """Sentences of the section, each no larger than ``max_tokens`` (split further if needed)."""
    units: list[_Unit] = []
    lead = section.start
    for para_start, para_end in _spans(text, section.start, section.end, _PARAGRAPH_BREAK):
        level = _PARAGRAPH
        for start, end in _spans(text, para_start, para_end, _SENTENCE_END):
            units.extend(_fit(text, lead, start, end, level, counter, max_tokens))
            lead, level = end, _SENTENCE
    return units


def _fit(
    text: str, lead: int, start: int, end: int, level: int, counter: TokenCounter, max_tokens: int
) -> Iterator[_Unit]:
    """One unit for the span if it fits, else one per word, else token-sized character runs."""
    tokens = counter.count_tokens(text[lead:end])
    if tokens <= max_tokens:
        yield _Unit(start, end, tokens, level)
        return
    words = [(match.start(), match.end()) for match in _WORD_RE.finditer(text, start, end)]
    if len(words) == 1:
        yield from _split_run(text, lead, start, end, level, counter, max_tokens)
        return
    for word_start, word_end in words:
        yield from _fit(text, lead, word_start, word_end, level, counter, max_tokens)
        lead, level = word_end, _WORD


def _split_run(
    text: str, lead: int, start: int, end: int, level: int, counter: TokenCounter, max_tokens: int
) -> Iterator[_Unit]:
    """Cut a run without spaces (a URL, base64, CJK text) into pieces that fit."""
    while start < end:
        cut, tokens = _longest_fit(text, lead, start, end, counter, max_tokens)
        yield _Unit(start, cut, tokens, level)
        lead = start = cut
        level = _WORD


def _longest_fit(
    text: str, lead: int, start: int, end: int, counter: TokenCounter, max_tokens: int
) -> tuple[int, int]:
    """Largest cut in (start, end] whose text from ``lead`` fits; at least one character."""
    good, good_tokens = start + 1, counter.count_tokens(text[lead : start + 1])
    bad, step = end + 1, max_tokens
    # Gallop first so the search costs O(piece) rather than O(run) per piece.
    while good < end:
        probe = min(end, good + step)
        tokens = counter.count_tokens(text[lead:probe])
        if tokens > max_tokens:
            bad = probe
            break
        good, good_tokens, step = probe, tokens, step * 2
    while bad - good > 1:
        middle = (good + bad) // 2
        tokens = counter.count_tokens(text[lead:middle])
        if tokens <= max_tokens:
            good, good_tokens = middle, tokens
        else:
            bad = middle
    return good, good_tokens


def _pack(
    text: str, units: list[_Unit], counter: TokenCounter, max_tokens: int, overlap: int
) -> Iterator[tuple[int, int]]:
    """Greedy packing of units into chunk spans, each starting with the previous one's tail."""
    index = 0
    tail: list[tuple[int, int]] = []
    while index < len(units):
        tail = _trim_tail(tail, max_tokens - units[index].tokens)
        used = sum(tokens for _, tokens in tail)
        stop = _cut(units, index, max_tokens - used)
        start = tail[0][0] if tail else units[index].start
        start, stop = _verified(text, units, counter, max_tokens, start, index, stop)
        yield start, units[stop - 1].end
        new_tokens = sum(unit.tokens for unit in units[index:stop])
        tail = _tail(text, units[index:stop], counter, min(overlap, new_tokens // 2))
        index = stop


def _trim_tail(tail: list[tuple[int, int]], room: int) -> list[tuple[int, int]]:
    """Drop overlap pieces from the front until the rest fits in ``room`` tokens."""
    total = sum(tokens for _, tokens in tail)
    while tail and total > room:
        total -= tail[0][1]
        tail = tail[1:]
    return tail


def _cut(units: list[_Unit], index: int, budget: int) -> int:
    """End (exclusive) of the chunk that starts at unit ``index`` and fits ``budget``."""
    # Fill greedily, then end at the strongest boundary that keeps the chunk at least half full,
    # so chunks end between paragraphs, else sentences, rather than mid-sentence.
    stop, total = index, 0
    while stop < len(units) and total + units[stop].tokens <= budget:
        total += units[stop].tokens
        stop += 1
    stop = max(stop, index + 1)
    if stop >= len(units):
        return len(units)
    best, best_level, filled = stop, -1, 0
    for candidate in range(index + 1, stop + 1):
        filled += units[candidate - 1].tokens
        if 2 * filled >= budget and units[candidate].level >= best_level:
            best, best_level = candidate, units[candidate].level
    return best


def _verified(
    text: str,
    units: list[_Unit],
    counter: TokenCounter,
    max_tokens: int,
    start: int,
    index: int,
    stop: int,
) -> tuple[int, int]:
    """(start, stop) shrunk until the joined chunk text really fits ``max_tokens``."""
    # Tokenisers are not exactly additive: drop the overlap first, then trailing units.
    while counter.count_tokens(text[start : units[stop - 1].end]) > max_tokens:
        if start != units[index].start:
            start = units[index].start
        elif stop - 1 > index:
            stop -= 1
        else:
            break
    return start, stop


def _tail(
    text: str, units: list[_Unit], counter: TokenCounter, budget: int
) -> list[tuple[int, int]]:
    """(start, tokens) of the trailing sentences, then words, worth at most ``budget`` tokens."""
    pieces: list[tuple[int, int]] = []
    for unit in reversed(units):
        if unit.tokens > budget:
            pieces.extend(_tail_words(text, unit, counter, budget))
            break
        pieces.append((unit.start, unit.tokens))
        budget -= unit.tokens
    pieces.reverse()
    return pieces


def _tail_words(
    text: str, unit: _Unit, counter: TokenCounter, budget: int
) -> Iterator[tuple[int, int]]:
    """(start, tokens) of the unit's last words, last first, worth at most ``budget`` tokens."""
    words = [
        (match.start(), match.end()) for match in _WORD_RE.finditer(text, unit.start, unit.end)
    ]
    for previous, current in zip(reversed(words[:-1]), reversed(words[1:]), strict=True):
        tokens = counter.count_tokens(text[previous[1] : current[1]])
        if tokens > budget:
            return
        yield current[0], tokens
        budget -= tokens
