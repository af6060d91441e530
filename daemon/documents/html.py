"""The main text of an HTML page with the stdlib parser: no menus, scripts, styles or forms.

Readability-style libraries pull in lxml; dropping the page furniture by tag and preferring
`<main>`/`<article>` gives the text a model needs from saved pages and HTML mail.
"""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

# Page furniture. A <form> is not: ASP.NET and many CMS pages wrap the whole page in one, so only
# the controls (buttons, selects, text areas) are dropped, not what the form contains.
_SKIP = {"script", "style", "noscript", "template", "nav", "footer", "aside", "svg", "iframe", "button",
         "select", "textarea", "head"}  # fmt: skip
_BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article",
          "main", "table", "ul", "ol", "blockquote", "pre", "hr", "dt", "dd", "header", "form",
          "caption", "figcaption"}  # fmt: skip
_VOID = {"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "embed", "source",
         "track", "wbr", "param"}  # fmt: skip
_CONTENT = {"main", "article", "section"}  # a <header> inside one is its heading, not the site's banner
_CELL_SEPARATOR = " | "


@dataclass
class _Open:
    """An element still open: whether it hides its text, marks main content, counts table cells."""

    tag: str
    skips: bool = False
    main: bool = False
    content: bool = False
    cells: int = 0


class _MainText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.skip_depth = 0
        self.stack: list[_Open] = []
        self.all: list[str] = []
        self.main: list[str] = []
        self.main_depth = 0
        self.content_depth = 0
        self.title: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID:
            if tag in ("br", "hr"):
                self._emit("\n")
            return
        role = dict(attrs).get("role") or ""
        banner = tag == "header" and not self.content_depth
        node = _Open(tag, skips=tag in _SKIP or banner or role in ("navigation", "banner", "contentinfo"),
                     main=tag in ("main", "article") or role == "main", content=tag in _CONTENT)  # fmt: skip
        self.stack.append(node)
        self.skip_depth += node.skips
        self.main_depth += node.main
        self.content_depth += node.content
        if tag in _BLOCK:
            self._emit("\n")
        if tag in ("td", "th"):
            self._cell()

    def handle_endtag(self, tag: str) -> None:
        if not any(node.tag == tag for node in self.stack):
            return
        while self.stack:  # close what the page forgot to close
            node = self.stack.pop()
            self.skip_depth -= node.skips
            self.main_depth -= node.main
            self.content_depth -= node.content
            if node.tag == tag:
                break
        if tag in _BLOCK and tag != "tr":  # rows: one newline each, not a blank line between them
            self._emit("\n")

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1].tag == "title":
            self.title.append(data)
        elif not self.skip_depth:
            self._emit(data)

    def _cell(self) -> None:
        """Cells of a row are separated, so "Total | 12.50" never reads "Total12.50"."""
        row = next((node for node in reversed(self.stack[:-1]) if node.tag in ("tr", "table")), None)
        if row is None:
            return
        if row.cells and not self.skip_depth:
            self._emit(_CELL_SEPARATOR)
        row.cells += 1

    def _emit(self, text: str) -> None:
        self.all.append(text)
        if self.main_depth:
            self.main.append(text)


def main_text(markup: str) -> tuple[str, dict[str, Any]]:
    """The readable text of a page and its title."""
    parser = _MainText()
    parser.feed(markup)
    parser.close()
    chosen = parser.main if "".join(parser.main).strip() else parser.all
    title = " ".join("".join(parser.title).split()) or None
    return _tidy("".join(chosen)), {"title": title}


def _tidy(text: str) -> str:
    lines = [" ".join(line.split()) for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()
