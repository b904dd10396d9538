"""Markdown that renders as text: model output and document titles never become HTML,
links or images in the browser.

The chat renders Markdown. Two helpers decide what may be markup:

- ``escape_text`` makes any string (a title, a path, a quoted passage, a transcript)
  render literally: every ASCII punctuation character is backslash-escaped, which
  CommonMark defines as "this character, as text".
- ``safe_markdown`` keeps the formatting of model output (emphasis, lists, headings,
  code) but escapes every ``<``, ``>``, ``[``, ``]`` and ``:`` outside code, so no HTML,
  no autolink, no directive and no link, image or link reference definition can form;
  citation markers such as ``[2]`` stay as they are so the chat can link them to their
  sources, except when they would start a link (``[2](...)``, ``[2][...]``, ``[2]: ...``).
  Bare web addresses are shown as code, so they are not turned into links either.
  Code spans and fenced code blocks are left alone: Markdown never interprets them.
"""

from __future__ import annotations

import re
import string

from xnai.domain.models import Citation

_PUNCTUATION = frozenset(string.punctuation)
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_BACKTICKS = re.compile(r"`+")
_MARKER = re.compile(r"\[(\d{1,3})\]")
# What a Markdown renderer would turn into a link by itself (GFM autolink literals).
_URL = re.compile(r"(?i)\b(?:(?:https?|ftp)://|www\.)[^\s<>`]*[^\s<>`.,;:!?)\]'\"]")
_ESCAPED = frozenset("<>[]:")  # ":" also starts a directive and an autolink


def escape_text(text: str) -> str:
    """``text`` as Markdown that renders exactly as ``text`` (no markup, no HTML)."""
    return "".join("\\" + ch if ch in _PUNCTUATION else ch for ch in text)


def safe_markdown(text: str) -> str:
    """Model output as Markdown without HTML, links, images or autolinks."""
    out: list[str] = []
    fence: str | None = None
    prose: list[str] = []
    for line in text.splitlines(keepends=True):
        opened = _FENCE.match(line)
        if fence is None and opened:
            out.append(_inline("".join(prose)))
            prose = []
            fence = opened.group(1)
            out.append(line)
        elif fence is not None:
            out.append(line)  # inside a fenced block: literal text already
            closing = _FENCE.match(line)
            if closing and closing.group(1)[0] == fence[0] and len(closing.group(1)) >= len(fence):
                fence = None
        else:
            prose.append(line)
    out.append(_inline("".join(prose)))
    return "".join(out)


def _inline(text: str) -> str:
    """Escape ``text`` outside its code spans (a backtick run closed by one as long)."""
    out: list[str] = []
    pos = 0
    while pos < len(text):
        run = _BACKTICKS.search(text, pos)
        if run is None:
            break
        close = _closing_run(text, run.end(), len(run.group(0)))
        if close is None:  # an unmatched run is literal backticks
            out.append(_prose(text[pos : run.end()]))
            pos = run.end()
            continue
        out.append(_prose(text[pos : run.start()]))
        out.append(text[run.start() : close])
        pos = close
    out.append(_prose(text[pos:]))
    return "".join(out)


def _closing_run(text: str, start: int, length: int) -> int | None:
    """The end of the first backtick run of exactly ``length`` after ``start``."""
    for run in _BACKTICKS.finditer(text, start):
        if len(run.group(0)) == length:
            return run.end()
    return None


def _prose(text: str) -> str:
    """Escape what makes HTML, links and images; web addresses become code (the renderer
    would make a bare address a link even with its punctuation escaped)."""
    out: list[str] = []
    pos = 0
    for url in _URL.finditer(text):
        out.append(_plain(text[pos : url.start()]))
        out.append(_code(url.group(0)))
        pos = url.end()
    out.append(_plain(text[pos:]))
    return "".join(out)


def _code(text: str) -> str:
    """``text`` as a code span."""
    fence = "`" * (max((len(r) for r in _BACKTICKS.findall(text)), default=0) + 1)
    return f"{fence}{text}{fence}"


def _plain(text: str) -> str:
    """Escape the characters that make HTML, links and images; keep plain citation
    markers."""
    out: list[str] = []
    pos = 0
    for marker in _MARKER.finditer(text):
        after = text[marker.end() : marker.end() + 1]
        if after in ("(", "[", ":"):
            continue  # it would start a link: escaped with the rest
        out.append(_escape_brackets(text[pos : marker.start()]))
        out.append(marker.group(0))
        pos = marker.end()
    out.append(_escape_brackets(text[pos:]))
    return "".join(out)


def _escape_brackets(text: str) -> str:
    # An existing backslash before one of them would escape our backslash instead.
    return "".join("\\" + ch if ch in _ESCAPED or ch == "\\" else ch for ch in text)


def citation_markdown(citation: Citation) -> str:
    """The body of a source element: title, file and span, then the quoted passage, all
    as literal text."""
    # Lines of a paragraph are joined: the chat would keep every line break.
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", citation.text) if p.strip()]
    quote = "\n\n".join(escape_text(p) for p in paragraphs)
    return (
        f"**{escape_text(citation.title or 'Untitled')}**\n\n"
        f"{escape_text(citation.source)}, characters {citation.start}–{citation.end}\n\n"
        f"---\n\n{quote}\n"
    )
