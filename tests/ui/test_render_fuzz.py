"""Generated hostile Markdown: the chat renderer never lets through HTML, an image or a
link that leaves the server, whatever the model or a document writes."""

from __future__ import annotations

import random

from tests.ui.markdown_check import dangers
from xnai.domain.models import Citation
from xnai.ui.render import citation_markdown, escape_text, safe_markdown

CASES = 10_000
SEED = 20261205

URLS = [
    "http://evil.example/?q=SECRET",
    "https://203.0.113.1/x.png",
    "HTTPS://EVIL.EXAMPLE",
    "//evil.example/x",
    "/\\evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt&#58;alert(1)",
    "java\tscript:alert(1)",
    "data:image/png;base64,iVBORw0KGgo=",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox",
    "mailto:a@evil.example",
    "www.evil.example/x",
    "evil@evil.example",
    "%2F%2Fevil.example",
    "&#x2F;&#x2F;evil.example",
    "ftp://evil.example",
    "../relative/page.md",
    "#top",
    "xmpp:a@evil.example",
    "http://ｅｖｉｌ.example",
    "<http://evil.example/a b>",
]
PIECES = [
    "`", "``", "```", "````", "~~~", "~", "~~", "\n", "\n\n", "\n```\n", "\n~~~\n", "```x`",
    "```js\n", "    ", "\t", "# ", "## ", "> ", "- ", "* ", "+ ", "1. ", "2) ", "---", "===",
    "|", "| a | b |\n|---|:-:|\n", "[", "]", "(", ")", "![", "](", "]: ", "[1]", "[2]:", "[^1]",
    "<", ">", "</", "<img src=x onerror=alert(1)>", "<script>", "</script>", "<a href=",
    "<!--", "-->", "<![CDATA[", "<?php", "<b>", "&lt;", "&gt;", "&#60;", "&#x3C;", "&amp;",
    "&nbsp;", "\\", "\\`", "\\[", "\\<", "*", "**", "_", "__", '"', "'", " ", "text",
    "SECRET", "[Verify]", "[x][r]", "[r]", "\n[r]: ", "\n[1]: ", "<<", ">>", "[[", "]]",
    "\u200b", "\u202e", "＜", "［", "］", "（", "）", "é", "\u00a0", "\u2028", "\r", "$", "@",
    ":", "://", "www.", ".",
]  # fmt: skip


def hostile(rng: random.Random) -> str:
    """A short string of Markdown syntax, web addresses and noise."""
    parts: list[str] = []
    for _ in range(rng.randint(2, 14)):
        roll = rng.random()
        if roll < 0.25:
            parts.append(rng.choice(URLS))
        elif roll < 0.35:
            url, text = rng.choice(URLS), rng.choice(["x", "", "`a`", "[1]", "*b*", "![i](x)"])
            parts.append(rng.choice([f"[{text}]({url})", f"![{text}]({url})", f"<{url}>"]))
        else:
            parts.append(rng.choice(PIECES))
    return "".join(parts)


def test_generated_hostile_markdown_never_renders_html_images_or_external_links() -> None:
    rng = random.Random(SEED)
    failures: list[tuple[str, str, list[str]]] = []
    for _ in range(CASES):
        text = hostile(rng)
        for out in (safe_markdown(text), escape_text(text)):
            found = dangers(out)
            if found:
                failures.append((text, out, found))
    assert failures == [], failures[:5]


def test_generated_hostile_passages_render_as_text_in_a_source_element() -> None:
    rng = random.Random(SEED + 1)
    for _ in range(CASES // 10):
        text = hostile(rng)
        out = citation_markdown(Citation(1, "d", "c", text, text, 0, 1, 0.5, text))
        assert dangers(out) == [], (text, out)


def test_every_prefix_of_a_generated_answer_is_safe_while_streaming() -> None:
    rng = random.Random(SEED + 2)
    for _ in range(50):
        text = hostile(rng)
        for end in range(1, len(text) + 1):
            assert dangers(safe_markdown(text[:end])) == [], text[:end]
