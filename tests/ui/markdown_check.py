"""What a Markdown renderer could turn into HTML, a loaded image or a clickable link.

The chat renders Markdown with GitHub's rules: CommonMark plus tables, strikethrough and
autolink literals, which turn bare web and e-mail addresses in text into links even when
their punctuation is backslash-escaped. ``dangers`` parses with a full CommonMark parser
(raw HTML on, the strictest case) and applies GitHub's autolink rules to every text node.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from markdown_it import MarkdownIt
from markdown_it.token import Token

try:  # linkify is an optional extra of markdown-it-py
    import linkify_it  # noqa: F401

    STRICT = MarkdownIt("commonmark", {"html": True, "linkify": True}).enable("linkify")
except ImportError:
    STRICT = MarkdownIt("commonmark", {"html": True})
STRICT.enable(["table", "strikethrough"])

# GitHub's autolink literals as the chat's renderer applies them to text nodes, made
# broader: any scheme, and no look at the character before the address.
AUTOLINK = re.compile(
    r"(?i)[a-z][a-z0-9+.\-]*://|www\.|[-.\w+]+@[-\w]+(?:\.[-\w]+)+|(?:mailto|xmpp):"
)
_SCHEME = re.compile(r"^[a-z][a-z0-9+.\-]*:", re.IGNORECASE)


def is_relative(url: str) -> bool:
    """True for a link that stays on the page's own server (no scheme, no host)."""
    plain = re.sub(r"[\t\n\r]", "", unquote(url)).strip(" \x00-\x1f")
    return not (_SCHEME.match(plain) or plain[:2].replace("\\", "/") == "//" or "\\" in plain)


def dangers(markdown: str) -> list[str]:
    """Everything in ``markdown`` that would render as HTML, an image or a link."""
    found: list[str] = []
    for token in _walk(STRICT.parse(markdown)):
        if token.type in ("html_block", "html_inline"):
            found.append(f"html {token.content!r}")
        elif token.type == "image":
            found.append(f"image {token.attrGet('src')!r}")
        elif token.type == "link_open" and not is_relative(str(token.attrGet("href"))):
            found.append(f"link {token.attrGet('href')!r}")
        elif token.type == "text" and AUTOLINK.search(token.content):
            found.append(f"autolink {token.content!r}")
    return found


def _walk(tokens: list[Token]) -> list[Token]:
    out: list[Token] = []
    for token in tokens:
        out.append(token)
        out.extend(_walk(token.children or []))
    return out
