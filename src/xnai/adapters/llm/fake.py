"""A deterministic chat model for tests and offline demos: it quotes source [1]."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Sequence

from xnai.domain.errors import ModelUnavailableError
from xnai.domain.models import ChatMessage

NOT_FOUND = "I could not find this in the library."

# A source starts on a line that begins with its number: "[1] Title" or "[1]: text", or
# with a quoting tag: '<source id="1" title="...">' (the prompt format of the answer service).
_SOURCE_MARKER = re.compile(
    r"^[ \t>]*(?:\[(\d+)\]|<source id=\"(\d+)\"[^>\n]*>)[ \t:.-]*", re.MULTILINE
)
_SENTENCE = re.compile(r".+?[.!?](?=\s|$)", re.DOTALL)
_QUOTES = "\"'`«»“”‘’"

Reply = Callable[[Sequence[ChatMessage]], str]


def numbered_sources(text: str) -> dict[int, str]:
    """Body text of each numbered source block in ``text``, keyed by its number."""
    markers = list(_SOURCE_MARKER.finditer(text))
    found: dict[int, str] = {}
    ends = [m.start() for m in markers[1:]] + [len(text)] * bool(markers)
    for marker, end in zip(markers, ends, strict=True):
        number = int(marker.group(1) or marker.group(2))
        found.setdefault(number, _block_body(text[marker.end() : end].split("</source>")[0]))
    return found


def _block_body(block: str) -> str:
    """The quoted text of a source block: the lines under its header, else the header line."""
    header, _, rest = block.partition("\n")
    paragraph = _first_paragraph(rest) or _first_paragraph(header)
    return paragraph.strip().strip(_QUOTES).strip()


def _first_paragraph(text: str) -> str:
    """Lines up to the first blank line, without quote marks or code fences."""
    lines: list[str] = []
    for raw in text.splitlines():
        line = raw.strip().lstrip(">").strip()
        if line.startswith(("```", '"""', "#")):  # fences and markdown headings
            continue
        if not line:
            # The last block runs to the end of the message: stop before what follows it.
            if lines:
                break
            continue
        lines.append(line)
    return " ".join(lines)


def first_sentence(text: str) -> str:
    """The first sentence of ``text`` (all of it when it has no end mark)."""
    flat = " ".join(text.split())
    match = _SENTENCE.match(flat)
    return match.group(0) if match else flat


def grounded_reply(messages: Sequence[ChatMessage]) -> str:
    """First sentence of the lowest-numbered source in the last user message, cited."""
    user = next((m.content for m in reversed(messages) if m.role == "user"), "")
    sources = {n: body for n, body in numbered_sources(user).items() if body}
    if not sources:
        return NOT_FOUND
    number = min(sources)
    return f"{first_sentence(sources[number])} [{number}]"


class FakeChatModel:
    """Deterministic ChatModel: streams a reply word by word, optionally failing first."""

    def __init__(
        self,
        name: str = "fake",
        context_size: int = 2048,
        *,
        reply: Reply | None = None,
        fail_times: int = 0,
    ) -> None:
        self.name = name
        self.context_size = context_size
        self._reply = reply or grounded_reply
        self._failures_left = fail_times
        self._lock = threading.Lock()
        self.calls: list[tuple[ChatMessage, ...]] = []

    def count_tokens(self, text: str) -> int:
        """Estimate: four tokens per three whitespace-separated words, plus one."""
        return len(text.split()) * 4 // 3 + 1

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: Sequence[str] = (),
    ) -> Iterator[str]:
        """Yield the reply word by word, at most ``max_tokens`` pieces, cut at ``stop``."""
        with self._lock:
            self.calls.append(tuple(messages))
            failing = self._failures_left > 0
            self._failures_left -= int(failing)
        if failing:
            raise ModelUnavailableError(f"{self.name}: scripted failure")
        text = _cut_at_stop(self._reply(messages), stop)
        yield from re.findall(r"\s*\S+", text)[: max(max_tokens, 0)]


def _cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to the earliest stop sequence (exclusive)."""
    cuts = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return text[: min(cuts)] if cuts else text
