"""A deterministic chat model for tests and offline demos: it quotes source [1]."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from xnai.domain.errors import ModelError, ModelUnavailableError
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
    """Deterministic ChatModel: streams a reply word by word, optionally failing first.

    With ``fault_file`` each call reads that file and behaves as it says (see ``Faults``),
    and appends one line to ``<fault_file>.calls``: faults switched at run time, from
    outside the process, for chaos tests against a running server.
    """

    def __init__(
        self,
        name: str = "fake",
        context_size: int = 2048,
        *,
        reply: Reply | None = None,
        fail_times: int = 0,
        fault_file: Path | None = None,
    ) -> None:
        self.name = name
        self.faults = Faults(fault_file) if fault_file is not None else None
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
        if self.faults is not None:
            self.faults.apply(self.name)
        text = _cut_at_stop(self._reply(messages), stop)
        yield from re.findall(r"\s*\S+", text)[: max(max_tokens, 0)]


def _cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to the earliest stop sequence (exclusive)."""
    cuts = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return text[: min(cuts)] if cuts else text


class Faults:
    """Fault injection read from a file on every call: ``ok`` (or no file) answers,
    ``fail`` fails as an unreachable server, ``hang`` blocks until the content changes,
    ``slow N`` waits N seconds (default 1) first, ``invalid`` fails as a rejected request."""

    POLL_S = 0.02

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.calls_path = self.path.with_name(self.path.name + ".calls")
        self._lock = threading.Lock()

    def mode(self) -> str:
        """The file's current content, stripped and lower-cased ("ok" when absent)."""
        try:
            return self.path.read_text(encoding="utf-8").strip().lower() or "ok"
        except FileNotFoundError:
            return "ok"

    def calls(self) -> int:
        """Calls counted so far (lines of the ``.calls`` file)."""
        try:
            return len(self.calls_path.read_text(encoding="utf-8").splitlines())
        except FileNotFoundError:
            return 0

    def apply(self, name: str) -> None:
        """Count this call, then behave as the file says (returns when the call may answer)."""
        mode = self.mode()
        with self._lock, self.calls_path.open("a", encoding="utf-8") as log:
            log.write(mode.split()[0] + "\n")
        while mode == "hang":
            time.sleep(self.POLL_S)
            mode = self.mode()
        word, _, arg = mode.partition(" ")
        if word == "fail":
            raise ModelUnavailableError(f"{name}: injected fault: the model server is down")
        if word == "invalid":
            raise ModelError(f"{name}: injected fault: the request was rejected")
        if word == "slow":
            time.sleep(_seconds(arg, default=1.0))


def _seconds(text: str, default: float) -> float:
    """``text`` as a number of seconds, ``default`` when it is not one."""
    try:
        return max(0.0, float(text))
    except ValueError:
        return default
