"""HTML in, HTML out: only the text is translated, the markup stays.

The document is read with Python's own maintained HTML parser (:class:`html.parser.HTMLParser`,
tolerant of real-world HTML) into a tree that keeps every tag, attribute, entity and comment as
written (each node holds its raw source). Then:

* **Segments.** Block elements (``p``, ``div``, ``li``, ``td``, ``h1`` ...) and ``<br>``
  separate segments; a segment is a run of text and inline elements (``b``, ``i``, ``em``,
  ``strong``, ``a``, ``span`` ...). Its plain text is translated (sentence by sentence, one
  batched search for the whole document, :mod:`seq2seq.inference.documents`) and its inline
  elements are put around the target words aligned to the words they covered
  (:mod:`seq2seq.inference.inline`); void elements inside a segment (``img``) go to the
  aligned point.
* **Protected.** ``<code>``, ``<pre>``, ``<script>``, ``<style>``, ``<textarea>``, ``<svg>``,
  ``<math>``, ``<template>``, and any element with ``translate="no"`` or the class
  ``notranslate`` are copied byte for byte, as are comments, doctypes and processing
  instructions, and segments without a letter or digit.
* **Well-formed.** Every start tag, with its attributes as written, comes out once, in the
  same nesting; text is escaped (``&``, ``<``, ``>``); an element left open in the input is
  closed where its parent ends, and an end tag that closes nothing is dropped.
"""

from __future__ import annotations

import html as html_lib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser

from seq2seq.inference.inline import Mark, Run, place, trim

VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                  "param", "source", "track", "wbr"})
INLINE = frozenset({"a", "abbr", "b", "bdi", "bdo", "cite", "data", "del", "dfn", "em", "font",
                    "i", "img", "input", "ins", "label", "mark", "q", "s", "small", "span",
                    "strong", "sub", "sup", "time", "u", "var", "wbr"})
PROTECTED = frozenset({"code", "kbd", "math", "pre", "samp", "script", "style", "svg",
                       "template", "textarea"})
BREAKS = frozenset({"br", "hr"})
CLOSE_SAME = frozenset({"dd", "dt", "li", "option", "p", "td", "th", "tr"})  # <li>a<li>b


@dataclass
class Node:
    """One node of the document, with its raw source.

    Attributes:
        kind: ``"root"``, ``"elem"``, ``"text"`` or ``"raw"`` (comment, doctype, ...).
        tag: the element's name (lower case), else "".
        start: the raw start tag, or the raw text of a text or raw node.
        end: the raw end tag ("" for void and self-closed elements; ``</tag>`` when the input
            left it open).
        attrs: the element's attributes.
        children: its content.
    """

    kind: str
    tag: str = ""
    start: str = ""
    end: str = ""
    attrs: dict[str, str | None] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)

    @property
    def protected(self) -> bool:
        classes = (self.attrs.get("class") or "").split()
        return self.kind == "elem" and (self.tag in PROTECTED or "notranslate" in classes
                                        or (self.attrs.get("translate") or "").lower() == "no")

    @property
    def inline(self) -> bool:
        """Text, or an inline element holding only inline content."""
        if self.kind == "text":
            return True
        return (self.kind == "elem" and self.tag in INLINE and not self.protected
                and all(c.inline for c in self.children))

    def raw(self) -> str:
        """The node as written (children included)."""
        return self.start + "".join(c.raw() for c in self.children) + self.end


class _Reader(HTMLParser):
    """Records every parser event with the offset where it starts."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.source = source
        self.line_starts = [0]
        for i, ch in enumerate(source):
            if ch == "\n":
                self.line_starts.append(i + 1)
        self.events: list[tuple[int, str, str, dict]] = []  # (offset, kind, tag, attrs)

    def _at(self) -> int:
        line, col = self.getpos()
        return self.line_starts[line - 1] + col

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.events.append((self._at(), "start", tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        self.events.append((self._at(), "startend", tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        self.events.append((self._at(), "end", tag, {}))

    def handle_data(self, data: str) -> None:
        self.events.append((self._at(), "text", "", {}))

    def _raw(self, *_: object) -> None:
        self.events.append((self._at(), "raw", "", {}))

    handle_comment = handle_decl = handle_pi = unknown_decl = _raw


def parse(source: str) -> Node:
    """The document's tree (see :class:`Node`); ``parse(s).raw() == s`` for well-formed
    ``s`` (an element whose end tag was left out gets one: ``<li>a<li>b`` becomes
    ``<li>a</li><li>b</li>``)."""
    reader = _Reader(source)
    reader.feed(source)
    reader.close()
    events = reader.events
    root = Node("root")
    stack = [root]
    for n, (at, kind, tag, attrs) in enumerate(events):
        raw = source[at:events[n + 1][0] if n + 1 < len(events) else len(source)]
        if kind in ("text", "raw"):
            stack[-1].children.append(Node(kind, start=raw))
        elif kind in ("start", "startend"):
            if tag in CLOSE_SAME and stack[-1].tag == tag:  # its end tag is optional
                stack.pop().end = f"</{tag}>"
            node = Node("elem", tag, raw, attrs=attrs)
            stack[-1].children.append(node)
            if kind == "start" and tag not in VOID:
                stack.append(node)
        elif any(s.tag == tag for s in stack[1:]):  # an end tag that closes something
            while stack[-1].tag != tag:
                left_open = stack.pop()
                left_open.end = f"</{left_open.tag}>"
            stack.pop().end = raw
    for left_open in stack[1:]:
        left_open.end = f"</{left_open.tag}>"
    return root


@dataclass
class _Segment:
    nodes: list[Node]
    run: Run
    lead: str
    trail: str


def _segments(node: Node, out: list) -> list:
    """``node``'s content as raw strings, nested lists and :class:`_Segment` s, in order."""
    group: list[Node] = []

    def flush() -> None:
        if group:
            out.append(_segment(list(group)))
            group.clear()

    for child in node.children:
        if child.inline and not (child.kind == "elem" and child.tag in BREAKS):
            group.append(child)
            continue
        flush()
        if child.kind == "elem" and not child.protected and child.tag not in VOID:
            inner: list = []
            _segments(child, inner)
            out.append((child.start, inner, child.end))
        else:
            out.append(child.raw())
    flush()
    return out


def _segment(nodes: list[Node]) -> _Segment:
    text: list[str] = []

    def walk(node: Node, marks: list[Mark]) -> None:
        at = sum(len(t) for t in text)
        if node.kind == "text":
            text.append(html_lib.unescape(node.start))
        elif node.tag in VOID or not node.children:
            marks.append(Mark(at, at, node, void=node.tag in VOID))
        else:
            mark = Mark(at, at, node)
            for c in node.children:
                walk(c, mark.children)
            mark.end = sum(len(t) for t in text)
            marks.append(mark)

    marks: list[Mark] = []
    for n in nodes:
        walk(n, marks)
    lead, run, trail = trim("".join(text), marks)
    return _Segment(nodes, run, lead, trail)


def _render(segment: _Segment, target: str, pairs: Sequence[tuple[int, int]]) -> str:
    out = [html_lib.escape(segment.lead, quote=False)]
    for kind, x in place(segment.run, target, pairs):
        if kind == "text":
            out.append(html_lib.escape(x, quote=False))
        elif kind == "open":
            out.append(x.data.start if x.data.kind == "elem" else "")
        else:
            out.append(x.data.end if x.data.kind == "elem" else "")
    out.append(html_lib.escape(segment.trail, quote=False))
    return "".join(out)


Translate = Callable[[list[str]], list[tuple[str, list[tuple[int, int]]]]]


def translate_html(source: str, translate: Translate) -> str:
    """``source`` with its text translated and its markup kept (module docstring).

    Args:
        source: an HTML document or fragment.
        translate: ``texts -> [(translation, word alignment pairs), ...]`` for the segments'
            plain texts (all of them in one call).

    Returns:
        The translated HTML.
    """
    parts = _segments(parse(source), [])
    segments: list[_Segment] = []

    def collect(items: list) -> None:
        for it in items:
            if isinstance(it, _Segment) and any(ch.isalnum() for ch in it.run.text):
                segments.append(it)
            elif isinstance(it, tuple):
                collect(it[1])

    collect(parts)
    done = dict(zip(map(id, segments), translate([s.run.text for s in segments]), strict=True))

    def write(items: list) -> str:
        out = []
        for it in items:
            if isinstance(it, str):
                out.append(it)
            elif isinstance(it, tuple):
                out.append(it[0] + write(it[1]) + it[2])
            elif id(it) in done:
                out.append(_render(it, *done[id(it)]))
            else:
                out.append("".join(n.raw() for n in it.nodes))
        return "".join(out)

    return write(parts)


__all__ = ["INLINE", "PROTECTED", "VOID", "Node", "parse", "translate_html"]
