"""Tests for seq2seq.inference.html (and inline.py, markup.py): the tree keeps the source, text
is translated, markup kept; a Hypothesis property test over 300 generated documents translated
by a real model: the output parses, has the same tags with the same attributes and nesting, and
keeps protected text byte for byte."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seq2seq.config import SearchConfig
from seq2seq.inference.html import parse, translate_html
from seq2seq.inference.inline import Mark, Run, place


def reverse_upper(texts: list[str]) -> list[tuple[str, list[tuple[int, int]]]]:
    """A stand-in translation with a known alignment: the words reversed, upper-cased."""
    out = []
    for t in texts:
        w = t.split()
        out.append((" ".join(x.upper() for x in reversed(w)),
                    [(i, len(w) - 1 - i) for i in range(len(w))]))
    return out


def test_the_tree_keeps_the_source() -> None:
    src = ('<!DOCTYPE html><div class="a b" data-x=\'1\'><p>Und <B>Gott</B> &amp; &#169;'
           '<br/>x<!-- note --><img src="i.png" alt="&lt;pic&gt;"></p></div>')
    assert parse(src).raw() == src
    assert parse("<ul><li>a<li>b</ul>").raw() == "<ul><li>a</li><li>b</li></ul>"
    assert parse("<p>a</b>c</p>").raw() == "<p>ac</p>"  # an end tag that closes nothing


def test_inline_marks_follow_the_alignment_and_keep_nesting() -> None:
    run = Run("Und Gott sprach heute", [Mark(4, 15, "b", [Mark(9, 15, "i")])])
    events = place(run, "today spoke God And", [(0, 3), (1, 2), (2, 1), (3, 0)])
    rendered = "".join(x if k == "text" else f"<{x.data}>" if k == "open" else f"</{x.data}>"
                       for k, x in events)
    assert rendered == "today <b><i>spoke</i> God</b> And"


def test_text_is_translated_and_markup_protected_text_and_attributes_kept() -> None:
    src = ('<p>Und <b>Gott <i>sprach</i></b>: <a href="/l?a=1&amp;b=2" title="T">Licht</a>!'
           '<br/>Zweite <code>x &lt; 1</code> Zeile.</p><pre>keep <b>this</b></pre>'
           '<p translate="no">Gott</p><p class="x notranslate">Herr</p><script>a<b</script>')
    out = translate_html(src, reverse_upper)
    assert out == ('<p><a href="/l?a=1&amp;b=2" title="T">LICHT</a>! <b><i>SPRACH</i>: GOTT</b>'
                   ' UND<br/>ZWEITE <code>x &lt; 1</code> ZEILE.</p><pre>keep <b>this</b></pre>'
                   '<p translate="no">Gott</p><p class="x notranslate">Herr</p>'
                   '<script>a<b</script>')
    assert translate_html("<p>a &lt; b &amp; c</p>", lambda ts: [(t, []) for t in ts]) == \
        "<p>a &lt; b &amp; c</p>"  # text escaped again


# ------------------------------------------------------------------------- property (real model)
WORDS = ["Gott", "sprach", "Licht", "und", "Erde", "Himmel", "Abend", "der", "die", "ist", "gut",
         "Wasser", "&amp;", "&lt;", "&#169;", "Tag.", "Nacht!", "\u00fcber", "1999"]
INLINE = ["b", "i", "em", "strong", "span", "a", "small", "u"]
BLOCK = ["p", "div", "h2", "li", "td", "blockquote"]
ATTRS = st.dictionaries(st.sampled_from(["class", "id", "title", "data-k"]),
                        st.sampled_from(["x", "y z", "a&amp;b", "\u00e4"]), max_size=2)


def _attrs(d: dict[str, str]) -> str:
    return "".join(f' {k}="{v}"' for k, v in sorted(d.items()))


def inline(depth: int) -> st.SearchStrategy[str]:
    text = st.lists(st.sampled_from(WORDS), min_size=1, max_size=6).map(" ".join)
    leaves = st.one_of(text, text, st.just('<img src="p.png"/>'), st.just("<br/>"),
                       st.builds(lambda w: f"<code>{w} &lt;x&gt;</code>", text),
                       st.builds(lambda w: f'<span translate="no">{w}</span>', text),
                       st.builds(lambda w: f'<span class="notranslate">{w}</span>', text))
    if depth == 0:
        return leaves
    tag = st.builds(lambda t, a, inner: f"<{t}{_attrs(a)}>{inner}</{t}>",
                    st.sampled_from(INLINE), ATTRS, st.deferred(lambda: inline(depth - 1)))
    return st.lists(st.one_of(leaves, tag), min_size=1, max_size=4).map(" ".join)


DOCS = st.lists(st.one_of(
    st.builds(lambda t, a, body: f"<{t}{_attrs(a)}>{body}</{t}>", st.sampled_from(BLOCK), ATTRS,
              inline(2)),
    st.builds(lambda body: f"<pre>{body}</pre>", inline(1)),
    st.builds(lambda body: f"<script>var s = '{body}';</script>", st.sampled_from(WORDS)),
    st.builds(lambda body: f"<ul><li>{body}</li><li>{body}</li></ul>", inline(1)),
), min_size=1, max_size=4).map("\n".join)


def _paths(xml: str) -> Counter:
    """Multiset of every element's path of (tag, attributes) from the root."""
    root = ET.fromstring(f"<root>{xml}</root>")
    out: Counter = Counter()

    def walk(el: ET.Element, path: tuple) -> None:
        for child in el:
            here = (*path, (child.tag, tuple(sorted(child.attrib.items()))))
            out[here] += 1
            walk(child, here)

    walk(root, ())
    return out


PROTECTED = re.compile(r'<(pre|code|script)\b.*?</\1>|<span (?:translate="no"|class="notranslate")>'
                       r".*?</span>", re.S)


def _protected(xml: str) -> list[str]:
    """The protected elements, as written, in order."""
    return [m.group(0) for m in PROTECTED.finditer(xml)]


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(doc=DOCS)
def test_property_well_formed_same_tags_protected_text_kept(translator, doc: str) -> None:
    cfg = SearchConfig(beam_size=1, max_len_a=1.0, max_len_b=4)
    out = translator.translate_documents([doc], cfg, format="html")[0].text
    assert _paths(out) == _paths(doc), (doc, out)
    assert _protected(out) == _protected(doc)
