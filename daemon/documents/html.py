"""The main text of an HTML page with the stdlib parser: no menus, scripts, styles or forms.

Readability-style libraries pull in lxml; dropping the page furniture by tag and preferring
`<main>`/`<article>` gives the text a model needs from saved pages and HTML mail.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

_SKIP = {"script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form",
         "svg", "iframe", "button", "select", "head"}
_BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article",
          "main", "table", "ul", "ol", "blockquote", "pre", "hr", "dt", "dd"}
_VOID = {"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "embed", "source",
         "track", "wbr", "param"}


class _MainText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.skip_depth = 0
        self.stack: list[str] = []
        self.all: list[str] = []
        self.main: list[str] = []
        self.main_depth = 0
        self.title: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID:
            if tag in ("br", "hr"):
                self._emit("\n")
            return
        self.stack.append(tag)
        role = dict(attrs).get("role") or ""
        if tag in _SKIP or role in ("navigation", "banner", "contentinfo"):
            self.skip_depth += 1
        if tag in ("main", "article") or role == "main":
            self.main_depth += 1
        if tag in _BLOCK:
            self._emit("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.stack:
            return
        while self.stack:  # close what the page forgot to close
            open_tag = self.stack.pop()
            if open_tag in _SKIP:
                self.skip_depth = max(0, self.skip_depth - 1)
            if open_tag in ("main", "article"):
                self.main_depth = max(0, self.main_depth - 1)
            if open_tag == tag:
                break
        if tag in _BLOCK:
            self._emit("\n")

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1] == "title":
            self.title.append(data)
        elif not self.skip_depth:
            self._emit(data)

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
