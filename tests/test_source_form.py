"""Tests for seq2seq.inference.source_form: what the search sees of a typed source and how its
translation is given back, alone and in the Translator (a real tiny model)."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from seq2seq.config import SearchConfig
from seq2seq.inference.casing import TrueCaser
from seq2seq.inference.source_form import SourceForm, source_form
from seq2seq.inference.translator import Translator

TC = TrueCaser({"gott": "Gott", "liebe": "Liebe"})


@pytest.mark.parametrize(("text", "kwargs", "expected"), [
    ("Gott ist Liebe", {}, SourceForm("Gott ist Liebe.", open_end=True)),
    ("Gott ist Liebe  ", {}, SourceForm("Gott ist Liebe.", open_end=True)),
    ("Kapitel 3", {}, SourceForm("Kapitel 3.", open_end=True)),
    ("Gott ist Liebe.", {}, SourceForm("Gott ist Liebe.")),
    ("Wer bist du?", {}, SourceForm("Wer bist du?")),
    ('Er sprach: "Geh"', {}, SourceForm('Er sprach: "Geh"')),  # a closing quote: as typed
    ("gott ist liebe", {}, SourceForm("Gott ist Liebe.", open_end=True)),
    ("GOTT IST LIEBE", {}, SourceForm("Gott ist Liebe.", upper=True, open_end=True)),
    ("GOTT IST LIEBE!", {}, SourceForm("Gott ist Liebe!", upper=True)),
    ("Gott ist Liebe", {"final_mark": None}, SourceForm("Gott ist Liebe")),
    ("Gott ist Liebe", {"punctuate": False}, SourceForm("Gott ist Liebe")),
    ("GOTT IST LIEBE", {"recase": False}, SourceForm("GOTT IST LIEBE.", open_end=True)),
    ("上帝是爱", {"final_mark": "。"}, SourceForm("上帝是爱。", open_end=True)),
])
def test_source_form(text: str, kwargs: dict, expected: SourceForm) -> None:
    assert source_form(text, **{"truecaser": TC, "final_mark": ".", **kwargs}) == expected


@pytest.mark.parametrize(("form", "translation", "expected"), [
    (SourceForm("x.", open_end=True), "God is love.", "God is love"),
    (SourceForm("x.", open_end=True), "Really?!", "Really"),          # the whole final run
    (SourceForm("x.", open_end=True), "and the truth,", "and the truth"),
    (SourceForm("x.", open_end=True), 'He said, "Go."', 'He said, "Go."'),  # quote: kept
    (SourceForm("x.", open_end=True), "...", "..."),      # nothing else would be left
    (SourceForm("x.", upper=True, open_end=True), "God is love.", "GOD IS LOVE"),
    (SourceForm("x.", upper=True), "God is love.", "GOD IS LOVE."),
    (SourceForm("x."), "God is love.", "God is love."),
])
def test_restore(form: SourceForm, translation: str, expected: str) -> None:
    assert form.restore(translation) == expected


@pytest.fixture(scope="module")
def styled(six_pairs_bundle) -> tuple[Translator, list[tuple[str, str]]]:
    """The six-pair model with the style the trainer keeps in bundles: the truecase table and
    the final mark of its sources ('.')."""
    from seq2seq.data.punctuation import final_mark

    bundle, pairs = six_pairs_bundle
    mark = final_mark(s for s, _ in pairs)
    assert mark == "."  # 5 of the 6 sources end in a mark, 3 of them in "."
    bundle = {**bundle, "truecase": {"src": TrueCaser.learn(s for s, _ in pairs).table},
              "final_mark": {"src": mark}}
    tr = Translator.from_bundle(bundle)
    assert tr.final_mark == "."
    return tr, pairs


def test_a_source_without_its_final_mark_translates_as_with_it_and_comes_back_without(styled):
    tr, pairs = styled
    (src, tgt), (src5, tgt5) = pairs[0], pairs[5]
    assert src.endswith(".") and tgt.endswith(".") and src5.endswith(".")
    cfg = SearchConfig(beam_size=3, n_best=2)
    marked, marked5 = tr.translate([src, src5], cfg)
    assert (marked.text, marked5.text) == (tgt, tgt5)  # a punctuated source: as before
    opened, caps = tr.translate([src[:-1], src[:-1].upper()], cfg)
    assert opened.text == tgt[:-1] and caps.text == tgt[:-1].upper()
    for got in (opened, caps):
        assert got.src_pieces == marked.src_pieces  # the model saw the punctuated source
        assert got.tokens == marked.tokens and got.tgt_pieces == marked.tgt_pieces
        assert got.score == pytest.approx(marked.score, abs=1e-5)
    assert [t for t, _ in opened.n_best] == [t.rstrip(".") for t, _ in marked.n_best]
    # switched off, or with a prefix, the model sees the source as typed
    off = tr.translate([src[:-1]], replace(cfg, punctuate_input=False))[0]
    prefixed = tr.translate([src[:-1]], cfg, prefixes=["In the"])[0]
    for got in (off, prefixed):
        assert got.src_pieces == tr.src_tok.pieces(src[:-1])
    assert prefixed.text.startswith("In the")


def test_a_bundle_without_a_final_mark_translates_the_source_as_typed(styled):
    tr, pairs = styled
    bare = Translator(tr.model, tr.src_tok, tr.tgt_tok, truecaser=tr.truecaser)
    src = pairs[0][0][:-1]
    got = bare.translate([src])[0]
    assert got.src_pieces == tr.src_tok.pieces(src)


def test_scoring_takes_the_source_as_typed(styled):
    tr, pairs = styled
    src, tgt = pairs[0][0][:-1], pairs[0][1][:-1]
    scored = tr.score([src], [tgt])[0]
    assert scored.src_pieces == tr.src_tok.pieces(src) and scored.text == tgt


def test_documents_and_html_give_each_sentence_back_as_it_came(styled):
    tr, pairs = styled
    (s0, t0), (s1, t1) = pairs[0], pairs[1]
    doc = tr.translate_documents([f"{s0[:-1]}\n{s1}"], SearchConfig())[0]
    assert doc.text == f"{t0[:-1]}\n{t1}"
    html = tr.translate_documents([f"<p><b>{s0[:-1]}</b></p>"], SearchConfig(),
                                  format="html")[0].text
    assert re.fullmatch(r"<p><b>(.*)</b></p>", html).group(1) == t0[:-1]
