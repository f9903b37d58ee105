"""Markdown in, Markdown out: only the text is translated, the structure stays.

The document is parsed by markdown-it-py (the maintained CommonMark parser; GFM tables on) and
written back by mdformat (the maintained Markdown formatter built on it, with mdformat-tables),
so the output is CommonMark in mdformat's normal style (``*`` emphasis, ``-`` bullets, aligned
table pipes, soft line breaks as spaces in translated paragraphs). Then:

* every inline run -- a paragraph, a heading, a list item's text, a table cell -- is
  translated as plain text (one batched search for the whole document), and its emphasis,
  strong emphasis, strikethrough and links are put around the target words aligned to the
  words they covered (:mod:`seq2seq.inference.inline`); a link's text is translated, its URL
  and title kept;
* code spans, images, inline HTML and hard line breaks stay as they are, at the aligned point;
  fenced and indented code blocks, HTML blocks and front matter are not touched;
* an emphasis left without words (a translation shorter than its marks) holds a zero-width
  space, since Markdown has no empty emphasis.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from seq2seq.inference.html import Translate
from seq2seq.inference.inline import Mark, Run, place, trim

OPENERS = {"em_open": "em_close", "strong_open": "strong_close", "s_open": "s_close",
           "link_open": "link_close"}
CLOSERS = frozenset(OPENERS.values())
ZWSP = "\u200b"  # the content of an emphasis that ended up without words


def _mdit() -> Any:
    from mdformat._util import build_mdit  # mdformat's own parser-and-renderer setup
    from mdformat.renderer import MDRenderer

    return build_mdit(MDRenderer, extensions=["tables"])


def _run(children: list[Any]) -> Run:
    """An inline token's children as a :class:`Run` (its whitespace at either end dropped)."""
    text: list[str] = []
    stack: list[Mark] = [Mark(0, 0)]  # the root collects the top-level marks
    for tok in children:
        at = sum(len(t) for t in text)
        if tok.type == "text":
            text.append(tok.content)
        elif tok.type == "softbreak":
            text.append(" ")
        elif tok.type in OPENERS:
            mark = Mark(at, at, [tok, None])
            stack[-1].children.append(mark)
            stack.append(mark)
        elif tok.type in OPENERS.values() and len(stack) > 1:
            mark = stack.pop()
            mark.end, mark.data[1] = at, tok
        else:  # code spans, images, inline HTML, hard breaks: kept at their point
            stack[-1].children.append(Mark(at, at, [tok, None], void=True))
    while len(stack) > 1:  # an opener without its closer (not produced by the parser)
        stack.pop().end = sum(len(t) for t in text)
    return trim("".join(text), stack[0].children)[1]


def _children(run: Run, target: str, pairs: Sequence[tuple[int, int]]) -> list[Any]:
    """The inline token's new children: the target text and the run's own markup tokens
    (whitespace at either end dropped: Markdown ignores it and mdformat would escape it)."""
    from markdown_it.token import Token

    out: list[Any] = []
    opened: list[Any] = []
    for kind, x in place(run, target.strip(), pairs):
        if kind == "text":
            out.append(Token("text", "", 0, content=x))
        elif kind == "open":
            if out and out[-1].type in CLOSERS and x.data[0].type in OPENERS:
                out.append(Token("text", "", 0, content=" "))  # "*a**b*" would merge
            if opened and opened[-1].type == x.data[0].type and x.data[1] is not None:
                flip = {"*": "_", "_": "*", "**": "__", "__": "**"}  # "**a**" is strong,
                mark = flip.get(opened[-1].markup, x.data[0].markup)  # "*_a_*" nested em
                x.data[0].markup = x.data[1].markup = mark
            out.append(x.data[0])
            opened.append(x.data[0])
        elif opened.pop() is not None and x.data[1] is not None:  # a close; points have none
            if out[-1] is x.data[0] and x.data[0].type != "link_open":  # empty emphasis is
                prev = out[-2] if len(out) > 1 else None  # no emphasis in Markdown
                if prev is not None and (prev.type in CLOSERS or prev.type == "text"
                                         and not prev.content[-1:].isspace()):
                    out.insert(-1, Token("text", "", 0, content=" "))
                out.append(Token("text", "", 0, content=ZWSP))
            out.append(x.data[1])
    texts = [t for t in out if t.type == "text"]
    if texts and out[0] is texts[0]:
        texts[0].content = texts[0].content.lstrip()
    if texts and out[-1] is texts[-1]:
        texts[-1].content = texts[-1].content.rstrip()
    return [t for t in out if t.type != "text" or t.content]


def translate_markdown(source: str, translate: Translate) -> str:
    """``source`` with its text translated and its structure kept (module docstring).

    Args:
        source: a Markdown document.
        translate: ``texts -> [(translation, word alignment pairs), ...]`` for the inline
            runs' plain texts (all of them in one call).

    Returns:
        The translated Markdown.
    """
    mdit = _mdit()
    env: dict = {}
    tokens = mdit.parse(source, env)
    todo = []
    for tok in tokens:
        if tok.type == "inline" and tok.children:
            run = _run(tok.children)
            if any(ch.isalnum() for ch in run.text):
                todo.append((tok, run))
    done = translate([run.text for _, run in todo]) if todo else []
    for (tok, run), (target, pairs) in zip(todo, done, strict=True):
        tok.children = _children(run, target, pairs)
    return mdit.renderer.render(tokens, mdit.options, env)


__all__ = ["translate_markdown"]
