"""Inline markup carried onto a translation through word alignments (for HTML and Markdown).

A :class:`Run` is a stretch of inline content with its plain text and its marks: the inline
elements (``<b>``, ``<a href>``, ``*emphasis*``, ``[links](url)`` ...) as character spans of the
text, nested, plus void marks (``<br>``, images) at a point. The text is translated as plain
text; :func:`place` then puts every mark around the target words aligned to the source words it
covered:

* a mark covering source words gets the target words aligned to any of them, from the first to
  the last (attention alignments, :func:`~seq2seq.inference.alignment.word_alignment`);
* a mark without aligned target words, and a void mark, goes to the point after the last target
  word aligned to a source word before it;
* marks keep their nesting: top-down, each mark is clamped into its parent's target span;
  siblings go in the order of their target positions (a translation may reorder them), each
  after the previous one, so the output always holds every mark once, properly nested; a mark
  that covered words gets at least one target word while one is free (it is left empty only
  when the translation has fewer words than such marks; never lost);
* a void mark that followed whitespace in the source is preceded by a space.

The result is a list of events (:data:`Event`): target text with its original whitespace, and
the marks' openings and closings, which the HTML and Markdown writers render.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

Event = tuple[str, Any]  # ("text", str) | ("open", Mark) | ("close", Mark)


@dataclass
class Mark:
    """An inline element over ``text[start:end]`` of its run (``start == end``: a point).

    Attributes:
        start, end: character offsets in the run's text.
        data: what the writer renders it as (raw tags, Markdown tokens).
        children: the marks inside it, in order.
        void: a point mark with no content (``<br>``, an image).
        spaced: a point mark that followed whitespace in the source (set by :func:`place`).
        spaced_after: a point mark that whitespace followed in the source.
    """

    start: int
    end: int
    data: Any = None
    children: list[Mark] = field(default_factory=list)
    void: bool = False
    spaced: bool = False
    spaced_after: bool = False


@dataclass
class Run:
    """Inline content: its plain text and its top-level marks."""

    text: str
    marks: list[Mark] = field(default_factory=list)


def trim(text: str, marks: list[Mark]) -> tuple[str, Run, str]:
    """``(lead, run, trail)``: the whitespace around ``text`` that no mark needs, and the run of
    the rest (marks moved to its offsets; a point mark after whitespace keeps ``spaced``)."""
    def flag(m: Mark) -> None:
        m.spaced = m.start == m.end and m.start > 0 and text[m.start - 1].isspace()
        m.spaced_after = m.start == m.end and m.end < len(text) and text[m.end].isspace()
        for c in m.children:
            flag(c)

    for m in marks:
        flag(m)
    if not text.strip() and not marks:
        return text, Run(""), ""
    lo = min([len(text) - len(text.lstrip()), *(m.start for m in marks)])
    hi = max([len(text.rstrip()), *(m.end for m in marks)])

    def move(m: Mark) -> Mark:
        return Mark(m.start - lo, m.end - lo, m.data, [move(c) for c in m.children], m.void,
                    m.spaced, m.spaced_after)

    return text[:lo], Run(text[lo:hi], [move(m) for m in marks]), text[hi:]


PUNCTUATION = ".,;:!?\"'»«“”‘’)]}…"


def words(text: str) -> list[tuple[str, str]]:
    """``(whitespace before, word)`` for every whitespace-separated word of ``text``."""
    return [(m[1], m[2]) for m in re.finditer(r"(\s*)(\S+)", text)]


def _spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(r"\S+", text)]


def place(run: Run, target: str, pairs: Sequence[tuple[int, int]]) -> list[Event]:
    """The events of ``run`` translated as ``target``.

    Args:
        run: the source run.
        target: its translation (plain text; whitespace kept as it is).
        pairs: ``(source word, target word)`` alignment pairs over the whitespace words of
            ``run.text`` and ``target``.

    Returns:
        Events; their texts concatenated are ``target`` with a space added before some point
        marks (``spaced``).
    """
    placer = _Placer(run, target, pairs)
    placer.emit(0, len(placer.tgt), placer.assign(run.marks, 0, len(placer.tgt)))
    tail = target[len(target.rstrip()):] if target.strip() else target
    if tail:
        placer.events.append(("text", tail))
    return [e for e in placer.events if e != ("text", "")]


class _Placer:
    """:func:`place`'s state: the word spans, the alignment, the events so far."""

    def __init__(self, run: Run, target: str, pairs: Sequence[tuple[int, int]]) -> None:
        self.text = run.text
        self.src = _spans(run.text)
        self.tgt = words(target)
        self.to_tgt: dict[int, list[int]] = {}
        for i, j in pairs:
            if 0 <= i < len(self.src) and 0 <= j < len(self.tgt):
                self.to_tgt.setdefault(i, []).append(j)
        self.events: list[Event] = []
        self.gapped: set[int] = set()  # words whose leading whitespace is out already
        self.held: dict[int, str] = {}  # word -> its final punctuation, to go after its marks

    def wanted(self, m: Mark) -> tuple[int, int]:
        """The target interval ``m`` would like (a point when nothing is aligned)."""
        m.spaced = m.spaced or (m.start == m.end and m.start > 0
                                and self.text[m.start - 1].isspace())
        m.spaced_after = m.spaced_after or (m.start == m.end and m.end < len(self.text)
                                            and self.text[m.end].isspace())
        covered = [k for k, (a, b) in enumerate(self.src) if a < m.end and b > m.start]
        hits = [j for k in covered for j in self.to_tgt.get(k, [])] if not m.void else []
        if hits:
            return min(hits), max(hits) + 1
        p = max((j + 1 for k, (_, b) in enumerate(self.src) if b <= m.start
                 for j in self.to_tgt.get(k, [])), default=0)
        return p, p

    def assign(self, marks: list[Mark], lo: int, hi: int,
               parent: Mark | None = None) -> list[tuple[Mark, int, int, list]]:
        """Intervals for sibling ``marks`` inside ``[lo, hi)``: in target order, not
        overlapping, their children inside them; a mark that covered part of its parent's
        text does not take all of the parent's words while the parent has two or more (in
        Markdown ``*a *b**`` would come back as ``**a b**``, strong emphasis)."""
        order = sorted((*self.wanted(m), k, m) for k, m in enumerate(marks))
        need = [int(not m.void and m.start < m.end) for _, _, _, m in order]  # had words
        out, cursor = [], lo
        for n, (a, b, _, m) in enumerate(order):
            top = max(cursor, hi - sum(need[n + 1:]))  # leave a word for each later one
            s = min(max(a, cursor), top)
            e = min(max(b, s), top)
            if s == e and need[n] and cursor < top:  # give it one word if one is free
                s, e = (s, s + 1) if s < top else (top - 1, top)
            if parent is not None and (s, e) == (lo, hi) and hi - lo >= 2 and not m.void \
                    and (m.start, m.end) != (parent.start, parent.end):
                s, e = (s + 1, e) if m.start > parent.start else (s, e - 1)
            out.append((m, s, e, self.assign(m.children, s, e, m)))
            cursor = e
        return out

    def _after_word(self) -> bool:
        """The last event ends a word or closes a mark (not a space, not an opening)."""
        if not self.events or self.events[-1][0] == "open":
            return False
        last = self.events[-1]
        return last[0] == "close" or not last[1][-1:].isspace()

    def word(self, w: int) -> None:
        text = self.tgt[w][1]
        if w in self.held:
            text = text[:len(text) - len(self.held[w])]
        self.events.append(("text", ("" if w in self.gapped else self.tgt[w][0]) + text))
        self.gapped.add(w)

    def _hold_punctuation(self, m: Mark, e: int) -> None:
        """A mark over words that did not end in punctuation in the source leaves the target's
        final punctuation (``word.``) outside: ``<em>word</em>.``."""
        inside = self.text[m.start:m.end].rstrip()
        if not inside or not inside[-1].isalnum() or e - 1 in self.held:
            return
        last = self.tgt[e - 1][1]
        core = last.rstrip(PUNCTUATION)
        if core and core != last:
            self.held[e - 1] = last[len(core):]

    def emit(self, lo: int, hi: int, placed: list, top: bool = True) -> None:
        """Events for the words ``[lo, hi)`` and the marks placed in them."""
        w = lo
        for m, s, e, inner in placed:
            if s < e and not m.void:
                self._hold_punctuation(m, e)
            while w < s:
                self.word(w)
                w += 1
            if s < e and s not in self.gapped:  # the space before a mark goes outside it
                self.events.append(("text", self.tgt[s][0]))
                self.gapped.add(s)
            elif s == e and m.spaced and self._after_word():
                self.events.append(("text", " "))
            self.events.append(("open", m))
            self.emit(s, e, inner, False)
            self.events.append(("close", m))
            if s < e and e - 1 in self.held and (top or e < hi):  # after the outermost mark
                self.events.append(("text", self.held[e - 1]))
            if s == e and lo < hi and m.spaced_after and s < len(self.tgt) and (
                    s in self.gapped or not self.tgt[s][0]):
                self.events.append(("text", " "))  # it stood apart from the next word
                self.gapped.add(s)
            w = max(w, e)
        while w < hi:
            self.word(w)
            w += 1


def text_of(events: Sequence[Event]) -> str:
    """The plain text of events."""
    return "".join(x for kind, x in events if kind == "text")


__all__ = ["Event", "Mark", "Run", "place", "text_of", "words"]
