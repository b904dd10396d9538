"""Markdown that renders safely in the chat: model output and document text never become
HTML, images or links that leave the server.

The chat renders Markdown with GitHub's rules, which also turn bare web and e-mail
addresses into links, even when their punctuation is escaped. Three helpers decide what
may be markup:

- ``escape_text`` makes any string (a title, a path, a transcript) render literally:
  every ASCII punctuation character is backslash-escaped, which CommonMark defines as
  "this character, as text", and web and e-mail addresses are shown as code.
- ``safe_markdown`` keeps the formatting of model output. It parses the text with a
  CommonMark parser (raw HTML off, tables and strikethrough on) and writes the syntax
  tree back as Markdown under a policy: every text node is escaped as above; citation
  markers such as ``[2]`` stay as they are so the chat can link them to their sources;
  relative links stay links; a link that leaves the server (a scheme, or ``//``) shows
  its text and then its target as code; images are never loaded, their alt text and
  address are shown instead (even a relative image is a request the reader did not ask
  for). Code is re-fenced so nothing in it can close it.
- ``citation_markdown`` shows a quoted source passage as literal text.

Regular expressions alone cannot do this: whether a backtick opens code depends on where
blocks end, which only a parser knows.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from urllib.parse import unquote

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

from xnai.domain.models import Citation

# Raw HTML off: a tag in the text stays text (and is escaped below).
_PARSER = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
_PUNCTUATION = frozenset(string.punctuation)
# Left as they are in model output: none of them starts markup on its own.
_INERT = frozenset(".,;?'\"()/")
_BACKTICKS = re.compile(r"`+")
_CITATION = re.compile(r"\[\d{1,3}\]")
# What the chat would turn into a link by itself (GitHub autolink literals), broadened:
# any scheme, www., mail addresses, and mailto:/xmpp: prefixes.
_ADDRESS = re.compile(
    r"(?i)(?:[a-z][a-z0-9+.\-]*://|www\.|(?:mailto|xmpp):)[^\s<|]*"
    r"|[-.\w+]+@[-\w]+(?:\.[-\w]+)+"
)
_TRAILING = ".,;:!?'\")]*_~"
_ORDERED = re.compile(r"^(\d{1,9})([.)])")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.\-]*:", re.IGNORECASE)
_LANGUAGE = re.compile(r"[\w+#.\-]{1,32}")
_MARKS = {"em": "*", "strong": "**", "s": "~~"}
_Escape = Callable[[str], str]


def escape_text(text: str) -> str:
    """``text`` as Markdown that renders exactly as ``text`` (addresses as code)."""
    return _addresses(
        text, lambda part: "".join("\\" + c if c in _PUNCTUATION else c for c in part)
    )


def safe_markdown(text: str) -> str:
    """Model output as Markdown without HTML, images or links that leave the server."""
    root = SyntaxTreeNode(_PARSER.parse(text))
    return _blocks(root.children, tight=False)


# Blocks --------------------------------------------------------------------------------


def _blocks(nodes: list[SyntaxTreeNode], *, tight: bool) -> str:
    parts = [_block(node) for node in nodes]
    return ("\n" if tight else "\n\n").join(p for p in parts if p)


def _block(node: SyntaxTreeNode) -> str:
    kind = node.type
    if kind == "paragraph":
        return _inline_of(node)
    if kind == "heading":
        level = int(node.tag[1:]) if node.tag[1:].isdigit() else 1
        return ("#" * level + " " + _inline_of(node, one_line=True)).rstrip()
    if kind in ("bullet_list", "ordered_list"):
        return _list(node)
    if kind == "blockquote":
        return _prefixed(_blocks(node.children, tight=False), "> ", "> ")
    if kind in ("fence", "code_block"):
        return _fence(node.content, node.info if kind == "fence" else "")
    if kind == "hr":
        return "---"
    if kind == "table":
        return _table(node)
    # Nothing else is produced with this parser's settings; show it as text if it were.
    return escape_text(node.content)


def _list(node: SyntaxTreeNode) -> str:
    tight = all(
        child.hidden
        for item in node.children
        for child in item.children
        if child.type == "paragraph"
    )
    start = int(str(node.attrs.get("start", 1)))
    items = []
    for number, item in enumerate(node.children, start):
        if node.type == "ordered_list":
            marker = f"{number}{item.markup or '.'} "
        else:
            marker = f"{item.markup or '-'} "
        body = _blocks(item.children, tight=tight)
        items.append(_prefixed(body, marker, " " * len(marker)) if body else marker.rstrip())
    return ("\n" if tight else "\n\n").join(items)


def _prefixed(body: str, first: str, rest: str) -> str:
    """``body`` with ``first`` before its first line and ``rest`` before the others."""
    lines = body.split("\n")
    return "\n".join([first + lines[0]] + [rest + ln if ln else rest.rstrip() for ln in lines[1:]])


def _fence(content: str, info: str) -> str:
    """``content`` in a fence longer than any backtick run inside it."""
    longest = max((len(run) for run in _BACKTICKS.findall(content)), default=0)
    fence = "`" * max(3, longest + 1)
    language = _LANGUAGE.match(info.strip())
    body = content if not content or content.endswith("\n") else content + "\n"
    return f"{fence}{language.group(0) if language else ''}\n{body}{fence}"


def _table(node: SyntaxTreeNode) -> str:
    rows: list[list[str]] = []
    aligns: list[str] = []
    for section in node.children:
        for row in section.children:
            rows.append([_inline_of(cell, one_line=True, table=True) for cell in row.children])
            if section.type == "thead":
                aligns = [str(cell.attrs.get("style", "")) for cell in row.children]
    rule = [_ALIGN.get(align, "---") for align in aligns]
    lines = [rows[0], rule, *rows[1:]] if rows else [rule]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


_ALIGN = {"text-align:left": ":--", "text-align:right": "--:", "text-align:center": ":-:"}


# Inline --------------------------------------------------------------------------------


def _inline_of(block: SyntaxTreeNode, *, one_line: bool = False, table: bool = False) -> str:
    inline = block.children[0].children if block.children else []
    return _inline(inline, one_line=one_line, table=table)


def _inline(nodes: list[SyntaxTreeNode], *, one_line: bool, table: bool) -> str:
    out: list[str] = []
    line_start = True
    for node in nodes:
        kind = node.type
        if kind == "text":
            out.append(_text(node.content, line_start=line_start))
        elif kind in ("softbreak", "hardbreak"):
            out.append(" " if one_line else ("\n" if kind == "softbreak" else "\\\n"))
        elif kind == "code_inline":
            out.append(_code(node.content, table=table))
        elif kind in _MARKS:
            inner = _inline(node.children, one_line=one_line, table=table)
            out.append(_MARKS[kind] + inner + _MARKS[kind])
        elif kind == "link":
            out.append(_link(node, one_line=one_line, table=table))
        elif kind == "image":
            alt = _inline(node.children, one_line=True, table=table)
            out.append(_shown(alt, str(node.attrs.get("src", "")), table=table))
        else:
            out.append(_text(node.content, line_start=False))
        line_start = kind in ("softbreak", "hardbreak") and not one_line
    return _concat(out)


def _link(node: SyntaxTreeNode, *, one_line: bool, table: bool) -> str:
    href = str(node.attrs.get("href", ""))
    inner = _inline(node.children, one_line=one_line, table=table)
    if _is_relative(href):
        # The parser has percent-encoded the target: no space, "<", ">" or line break.
        return f"[{inner}](<{href}>)"
    if node.markup == "autolink":
        return _code(href, table=table)
    return _shown(inner, href, table=table)


def _shown(text: str, url: str, *, table: bool) -> str:
    """A link or image that may not render: its text, then its address as code."""
    code = _code(url, table=table) if url else ""
    return f"{text} ({code})" if text and code else text or code


def _is_relative(url: str) -> bool:
    """True for a link that stays on the chat's own server: no scheme and no host, even
    after decoding and the clean-up browsers do."""
    plain = re.sub(r"[\t\n\r]", "", unquote(url)).strip(" \x00-\x1f")
    if _SCHEME.match(plain) or "\\" in plain:
        return False
    return not plain.startswith("//")


def _text(text: str, *, line_start: bool) -> str:
    """A text node of model output: escaped, citation markers kept, addresses as code."""
    if line_start and (ordered := _ORDERED.match(text)):  # not the start of a list
        head, text = ordered.group(1) + "\\" + ordered.group(2), text[ordered.end() :]
        return head + _addresses(text, _escape_prose)
    return _addresses(text, _escape_prose)


def _addresses(text: str, escape: _Escape) -> str:
    """``escape`` applied to ``text`` except web and mail addresses, which become code."""
    out: list[str] = []
    pos = 0
    for match in _ADDRESS.finditer(text):
        address = match.group(0).rstrip(_TRAILING) or match.group(0)
        out.append(escape(text[pos : match.start()]))
        out.append(_code(address))
        pos = match.start() + len(address)
    out.append(escape(text[pos:]))
    return _concat(out)


def _escape_prose(text: str) -> str:
    out: list[str] = []
    pos = 0
    for marker in _CITATION.finditer(text):
        if text[marker.end() : marker.end() + 1] == "(":
            continue  # "[2](" would start a link: escaped with the rest
        out.append(_escape_marks(text[pos : marker.start()]))
        out.append(marker.group(0))
        pos = marker.end()
    out.append(_escape_marks(text[pos:]))
    return "".join(out)


def _escape_marks(text: str) -> str:
    return "".join("\\" + c if c in _PUNCTUATION and c not in _INERT else c for c in text)


def _concat(pieces: list[str]) -> str:
    """``pieces`` joined; a space keeps two code spans from merging their fences."""
    out: list[str] = []
    for piece in pieces:
        if piece and out and out[-1].endswith("`") and piece.startswith("`"):
            out.append(" ")
        if piece:
            out.append(piece)
    return "".join(out)


def _code(text: str, *, table: bool = False) -> str:
    """``text`` as a code span, which Markdown never interprets."""
    if table:
        text = text.replace("|", "\\|")  # a table splits its cells even inside code
    fence = "`" * (max((len(run) for run in _BACKTICKS.findall(text)), default=0) + 1)
    pad = " " if text[:1] == "`" or text[-1:] == "`" or (text[:1] == text[-1:] == " ") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


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


def reading_line(citations: tuple[Citation, ...]) -> str:
    """The sources an answer is being written from, numbered, titles shown as text."""
    if not citations:
        return ""
    titles = ((c.number, " ".join(c.title.split())) for c in citations)  # one line each
    return "Reading: " + ", ".join(f"[{n}] {escape_text(title)}" for n, title in titles)
