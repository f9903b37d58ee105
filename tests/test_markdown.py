"""Tests for seq2seq.inference.markdown: text translated, structure kept; a Hypothesis property
test over 300 generated documents translated by a real model: the same blocks, the same inline
markup, link URLs, code spans and code blocks byte for byte."""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from test_html import reverse_upper

from seq2seq.config import SearchConfig
from seq2seq.inference.markdown import translate_markdown


def test_text_is_translated_and_structure_kept() -> None:
    md = ("# Titel *wichtig*\n\nUnd **Gott _sprach_** zu [Noah](http://x.org \"T\") und "
          "`code` hier.\n\n| a | b |\n|---|---|\n| *Eins* | zwei |\n\n```py\nx = 1\n```\n\n"
          "- eins\n- zwei ![Bild](p.png)\n")
    assert translate_markdown(md, reverse_upper) == (
        "# *WICHTIG* TITEL\n\nHIER. UND [NOAH](http://x.org \"T\") ZU **_SPRACH_ GOTT** UND "
        "`code`\n\n| A      | B    |\n| ------ | ---- |\n| *EINS* | ZWEI |\n\n```py\nx = 1\n```\n\n"
        "- EINS\n- ZWEI ![Bild](p.png)\n")


# ------------------------------------------------------------------------- property (real model)
WORDS = ["Gott", "sprach", "Licht", "und", "Erde", "Himmel", "Abend", "der", "ist", "gut.",
         "Tag!", "\u00fcber", "1999", "a_b", "x*y"]
TEXT = st.lists(st.sampled_from(WORDS), min_size=1, max_size=6).map(" ".join)


def inline(depth: int) -> st.SearchStrategy[str]:
    leaves = st.one_of(TEXT, TEXT, st.builds(lambda w: f"`{w}`", TEXT),
                       st.builds(lambda w: f"![{w}](img.png)", TEXT))
    if depth == 0:
        return leaves
    inner = st.deferred(lambda: inline(depth - 1))
    marked = st.one_of(st.builds(lambda w: f"*{w}*", inner),
                       st.builds(lambda w: f"**{w}**", inner),
                       st.builds(lambda w, u: f"[{w}](https://x.org/{u})", inner,
                                 st.sampled_from(["a", "b?c=1", "d#e"])))
    return st.lists(st.one_of(leaves, marked), min_size=1, max_size=4).map(" ".join)


BLOCKS = st.one_of(
    st.builds(lambda n, t: f"{'#' * n} {t}", st.integers(1, 3), inline(1)),
    inline(2),
    st.builds(lambda items: "\n".join(f"- {x}" for x in items), st.lists(inline(1), min_size=1,
                                                                         max_size=3)),
    st.builds(lambda a, b: f"| {a} | {b} |\n|---|---|\n| {b} | {a} |", inline(0), inline(1)),
    st.builds(lambda t: f"```\n{t} *not* [x](y)\n```", TEXT),
    st.builds(lambda t: f"> {t}", inline(1)),
)
DOCS = st.lists(BLOCKS, min_size=1, max_size=5).map("\n\n".join)
MD = MarkdownIt("commonmark").enable("table")


def _shape(md: str) -> tuple[list, Counter, Counter]:
    """Block tokens in order; inline markup kinds and link/image URLs; code as written."""
    blocks, marks, kept = [], Counter(), Counter()
    for tok in MD.parse(md):
        if tok.type != "inline":
            blocks.append((tok.type, tok.tag))
            if tok.type in ("fence", "code_block"):
                kept[tok.content] += 1
            continue
        for c in tok.children or []:
            if c.type in ("text", "softbreak"):
                continue
            marks[(c.type, c.attrGet("href") or c.attrGet("src"))] += 1
            if c.type == "code_inline":
                kept[c.content] += 1
    return blocks, marks, kept


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(doc=DOCS)
def test_property_same_structure_urls_and_code(translator, doc: str) -> None:
    cfg = SearchConfig(beam_size=1, max_len_a=1.0, max_len_b=4)
    out = translator.translate_documents([doc], cfg, format="markdown")[0].text
    assert _shape(out) == _shape(doc), (doc, out)
