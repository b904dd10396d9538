"""HTML loader: main-text extraction with trafilatura, a stdlib parser as the fallback."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import trafilatura

from xnai.adapters.loaders.text import decode_bytes, normalise_newlines, require_data, require_text
from xnai.domain.models import LoadedDocument

_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
# Elements whose content is never visible text (or is page chrome, not content).
_SKIPPED = frozenset({"script", "style", "noscript", "template", "svg", "head", "nav"})
_BLOCKS = frozenset(
    {"p", "div", "br", "li", "tr", "td", "th", "table", "section", "article", "main"}
    | {"ul", "ol", "pre", "blockquote", "header", "footer", "aside", "dd", "dt", "hr"}
)
_HEADINGS = {f"h{level}": level for level in range(1, 7)}


class _PageParser(HTMLParser):
    """Collects the <title> and the visible text, with headings as markdown lines."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title_parts: list[str] = []
        self.parts: list[str] = []
        self._skip_depth = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Track skipped regions and start new lines at block boundaries."""
        if tag == "title":
            self._in_title = True
        elif tag in _SKIPPED:
            self._skip_depth += 1
        elif tag in _HEADINGS:
            self.parts.append("\n\n" + "#" * _HEADINGS[tag] + " ")
        elif tag in _BLOCKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        """Close skipped regions and blocks."""
        if tag == "title":
            self._in_title = False
        elif tag in _SKIPPED:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in _HEADINGS or tag in _BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        """Keep text outside skipped regions, with runs of whitespace collapsed."""
        if self._in_title:
            self.title_parts.append(data)
        elif not self._skip_depth:
            self.parts.append(re.sub(r"\s+", " ", data))

    def text(self) -> str:
        """The collected text, one stripped line per block, blocks separated by blank lines."""
        lines = (line.strip() for line in "".join(self.parts).split("\n"))
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()

    def title(self) -> str:
        """The page title with whitespace collapsed."""
        return " ".join("".join(self.title_parts).split())


def _declared_charset(data: bytes) -> str | None:
    """The charset named by a <meta> tag near the top of the page, if any."""
    match = _CHARSET.search(data[:4096])
    return match.group(1).decode("ascii") if match else None


def _main_text(markup: str) -> str:
    """Main content as markdown; trafilatura never fetches anything when given markup."""
    extracted = trafilatura.extract(
        markup,
        include_comments=False,
        include_tables=True,
        favor_recall=True,
        output_format="markdown",
    )
    return extracted or ""


class HtmlLoader:
    """Loads .html/.htm pages, keeping the main text and dropping navigation and scripts."""

    name = "html"
    version = "1"
    suffixes: tuple[str, ...] = (".html", ".htm")

    def load(self, path: Path, data: bytes) -> LoadedDocument:
        """Decode the page, extract its main text and take the title from <title>."""
        require_data(data)
        markup, encoding = decode_bytes(data, declared=_declared_charset(data))
        parser = _PageParser()
        parser.feed(markup)
        parser.close()
        text = _main_text(markup).strip() or parser.text()
        return LoadedDocument(
            text=require_text(normalise_newlines(text)),
            title=parser.title() or path.stem,
            mime="text/html",
            loader=self.name,
            loader_version=self.version,
            encoding=encoding,
        )
