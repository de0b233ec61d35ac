"""Strict HTML validation for the status pages' tests.

Two checks, because each catches what the other lets through:
- html5lib in strict mode runs the WHATWG parsing algorithm, the one browsers use, and
  raises on every parse error the standard defines (a stray `<`, a duplicate
  attribute, a bad character reference, an unclosed element at the end...);
- the standard library's parser then demands what our templates promise on top:
  every non-void element closed explicitly and in order (the standard lets `</td>`
  or `</p>` be implied; we never rely on it), no duplicate ids.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import html5lib

VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}


class _Balance(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, tuple[int, int]]] = []
        self.problems: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = [name for name, _ in attrs]
        if len(names) != len(set(names)):
            self.problems.append(f"{self.getpos()}: <{tag}> repeats an attribute")
        for name, value in attrs:
            if name == "id":
                if value in self.ids:
                    self.problems.append(f"{self.getpos()}: duplicate id {value!r}")
                self.ids.add(value or "")
        if tag not in VOID:
            self.stack.append((tag, self.getpos()))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:
            self.problems.append(f"{self.getpos()}: <{tag}/> is not a void element")
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            self.problems.append(f"{self.getpos()}: </{tag}> closes a void element")
            return
        if not self.stack:
            self.problems.append(f"{self.getpos()}: </{tag}> closes nothing")
            return
        open_tag, where = self.stack[-1]
        if open_tag != tag:
            self.problems.append(f"{self.getpos()}: </{tag}> closes <{open_tag}> from {where}")
            return
        self.stack.pop()


def validate_html(text: str) -> ET.Element:
    """Parse `text` strictly; raise AssertionError listing every problem. Returns the
    document as an ElementTree (plain tag names) for assertions on its content."""
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False)
    try:
        tree = parser.parse(text)
    except html5lib.html5parser.ParseError:
        raise AssertionError(f"HTML parse errors: {parser.errors[:5]}") from None
    assert text.startswith("<!DOCTYPE html>"), "no doctype: quirks mode"
    balance = _Balance()
    balance.feed(text)
    balance.close()
    problems = balance.problems + [
        f"<{tag}> from {where} never closed" for tag, where in balance.stack
    ]
    assert not problems, problems[:10]
    return tree


def text_of(element: ET.Element) -> str:
    return "".join(element.itertext())
