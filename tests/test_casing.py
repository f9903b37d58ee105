"""Tests for seq2seq.inference.casing: what counts as one case, the truecaser, and the
Translator truecasing such sources and answering capitals in capitals (a real tiny model)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from seq2seq.config import SearchConfig
from seq2seq.inference.casing import TrueCaser, all_caps, all_lower, recase_source
from seq2seq.inference.translator import Translator


@pytest.mark.parametrize(("text", "expected"), [
    ("GOTT IST LIEBE.", True),
    ("DIE NATO", True),                      # two words of two capitals or more
    ("ÜBER DIE STRASSE", True),              # non-ASCII capitals
    ("ΘΕΟΣ ΑΓΑΠΗ", True),                    # another cased script
    ("NATO-GIPFEL 2024: 3 TAGE", True),      # digits and marks do not count either way
    ("Gott ist Liebe.", False),
    ("GOTT IST LIEBe", False),               # one lowercase letter
    ("NATO", False),                         # one word: too often an acronym
    ("NATO und EU", False),
    ("A B C D", False),                      # no word of two capitals
    ("3 + 4 = 7", False),
    ("上帝 是 爱", False),                    # uncased script
    ("", False),
])
def test_all_caps(text: str, expected: bool) -> None:
    assert all_caps(text) is expected


@pytest.mark.parametrize(("text", "expected"), [
    ("gott ist liebe", True), ("hallo", True), ("über 3 tage!", True),
    ("Gott ist liebe", False), ("gott ist LIEBE", False), ("3 + 4", False), ("上帝 是 爱", False),
])
def test_all_lower(text: str, expected: bool) -> None:
    assert all_lower(text) is expected


def test_the_truecaser_learns_the_most_frequent_form_after_the_first_word() -> None:
    tc = TrueCaser.learn([
        "Und Gott sprach: Es werde Licht!",   # "Und" starts the sentence: not counted
        "und es ward Licht.",
        "Da sah Gott das Licht, und es war gut.",  # "es" 2 : "Es" 1
        "Amen",                               # a one-word sentence counts
        "DAS WORT",                           # "WORT" 1; "das" stays lowercase (1 : 0)
        "Er sagte: Selig",                    # "Selig" 1 : "selig" 1, a tie: the form seen first
        "und selig sind",
    ])
    assert tc.table == {"gott": "Gott", "licht": "Licht", "amen": "Amen", "wort": "WORT",
                        "selig": "Selig"}
    assert len(tc) == 5
    assert tc("GOTT SPRACH: ES WERDE LICHT!") == "Gott sprach: es werde Licht!"
    assert tc("und gott sah das licht") == "Und Gott sah das Licht"  # first letter up
    assert tc("3 mal amen") == "3 Mal Amen"
    assert tc("…") == "…"


def test_recase_source_without_a_table_only_lowercases_capitals() -> None:
    assert recase_source("GOTT IST LIEBE.", None) == ("gott ist liebe.", True)
    assert recase_source("gott ist liebe", None) == ("gott ist liebe", False)
    tc = TrueCaser({"gott": "Gott"})
    assert recase_source("Gott ist Liebe", tc) == ("Gott ist Liebe", False)  # cased: as it is
    assert recase_source("NATO", tc) == ("NATO", False)


@pytest.fixture(scope="module")
def cased_model(six_pairs_bundle) -> tuple[Translator, list[tuple[str, str]]]:
    """The six-pair model with the truecase table of its sources in its bundle, as the trainer
    puts it there, and those pairs."""
    bundle, pairs = six_pairs_bundle
    bundle = {**bundle, "truecase": {"src": TrueCaser.learn(s for s, _ in pairs).table}}
    return Translator.from_bundle(bundle), pairs


SOURCE = "Im Anfang schuf Gott die Himmel und die Erde."
TARGET = "In the beginning God created the heavens and the earth."


def test_sources_in_one_case_translate_as_the_cased_source(cased_model):
    tr, pairs = cased_model
    assert pairs[0] == (SOURCE, TARGET)
    cfg = SearchConfig(beam_size=3, n_best=2)
    cased = tr.translate([SOURCE], cfg)[0]
    caps, lower = tr.translate([SOURCE.upper(), SOURCE.lower()], cfg)
    assert caps.text == TARGET.upper() and lower.text == TARGET
    for got in (caps, lower):
        assert got.tokens == cased.tokens and got.score == pytest.approx(cased.score, abs=1e-5)
        assert got.src_pieces == cased.src_pieces  # the model saw the truecased source
        assert got.tgt_pieces == cased.tgt_pieces
    assert [t for t, _ in caps.n_best] == [t.upper() for t, _ in cased.n_best]
    assert [t for t, _ in lower.n_best] == [t for t, _ in cased.n_best]
    assert [s for _, s in caps.n_best] == pytest.approx([s for _, s in cased.n_best], abs=1e-5)
    # switched off, the model gets the source as typed, and answers something else
    off = tr.translate([SOURCE.upper(), SOURCE.lower()], replace(cfg, recase_input=False))
    assert [t.src_pieces for t in off] == [tr.src_tok.pieces(SOURCE.upper()),
                                           tr.src_tok.pieces(SOURCE.lower())]
    assert [t.text for t in off] != [TARGET.upper(), TARGET]


def test_without_a_table_capitals_are_lowercased(cased_model):
    tr, _ = cased_model
    bare = Translator(tr.model, tr.src_tok, tr.tgt_tok)
    caps, lower = bare.translate([SOURCE.upper(), SOURCE.lower()])
    assert caps.src_pieces == tr.src_tok.pieces(SOURCE.lower())
    assert caps.text == caps.text.upper()
    assert lower.src_pieces == tr.src_tok.pieces(SOURCE.lower())  # as typed


def test_one_case_is_left_alone_with_a_prefix_or_a_single_capitalised_word(cased_model):
    tr, _ = cased_model
    with_prefix = tr.translate([SOURCE.upper()], SearchConfig(), prefixes=["In the"])[0]
    assert with_prefix.src_pieces == tr.src_tok.pieces(SOURCE.upper())
    assert with_prefix.text.startswith("In the")
    one_word = tr.translate(["GOTT"], SearchConfig())[0]
    assert one_word.src_pieces == tr.src_tok.pieces("GOTT")


def test_glossary_terms_match_the_truecased_source(cased_model):
    tr, _ = cased_model
    out = tr.translate([SOURCE.lower()], SearchConfig(), glossary={"Gott": "God"})[0]
    assert [(c.source, c.target, c.met) for c in out.constraints] == [("Gott", "God", True)]


def test_documents_recase_sentence_by_sentence(cased_model):
    tr, pairs = cased_model
    (s0, t0), (s1, t1) = pairs[0], pairs[1]
    doc = tr.translate_documents([f"{s0.upper()}\n{s1}"], SearchConfig())[0]
    assert doc.text == f"{t0.upper()}\n{t1}"
