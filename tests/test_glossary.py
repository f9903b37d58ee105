"""Tests for seq2seq.inference.glossary: reading, matching whole words after normalisation,
longest first without overlap, and the constraint checks the translator reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from seq2seq.inference.glossary import Glossary, TermCheck


def test_matching_is_whole_words_longest_first_without_overlap() -> None:
    g = Glossary({"Gott": "the Almighty", "Gott Vater": "God the Father", "Herr": "LORD",
                  "Herrn": "the LORD", "Wort": "Logos"})
    assert g.matches("Und Gott Vater sprach zum Herrn.") == [
        ("Gott Vater", "God the Father"), ("Herrn", "the LORD")]
    assert g.matches("Gottes Wort, Gott!") == [("Wort", "Logos"), ("Gott", "the Almighty")]
    assert g.matches("Götter und Herrlichkeit") == []  # no partial words
    assert g.matches("gott") == []  # case-sensitive
    assert Glossary({"A": "x", "B": "x"}).matches("A B") == [("A", "x")]  # a target once


def test_matching_uses_the_tokenizers_normalisation(tiny_bundle: Path) -> None:
    from seq2seq.checkpoint import load_bundle, tokenizers_from_bundle

    src, _ = tokenizers_from_bundle(load_bundle(tiny_bundle))
    g = Glossary({"Gott Vater": "God the Father", "ＡＢＣ": "abc"})
    assert g.matches("Gott   Vater", src.normalize) == [("Gott Vater", "God the Father")]
    assert g.matches("ABC", src.normalize) == [("ＡＢＣ", "abc")]  # NFKC on both sides
    assert g.matches("Gott   Vater") == []  # without it, the spaces differ


def test_required_terms_carry_their_target_pieces(tiny_bundle: Path) -> None:
    from seq2seq.checkpoint import load_bundle, tokenizers_from_bundle

    src, tgt = tokenizers_from_bundle(load_bundle(tiny_bundle))
    g = Glossary({"Gott Vater": "God the Father", "Herr": "\u200b", "Wort": "Logos"})
    assert g.required("Das Wort von Gott   Vater", src.normalize, tgt.encode) == [
        ("Wort", "Logos", tgt.encode("Logos")),
        ("Gott Vater", "God the Father", tgt.encode("God the Father"))]
    assert tgt.encode("\u200b") == []
    assert g.required("Der Herr", src.normalize, tgt.encode) == []  # encodes to nothing
    assert g.required("   ", src.normalize, tgt.encode) == []


def test_reading_extending_and_bad_entries(tmp_path: Path) -> None:
    f = tmp_path / "terms.tsv"
    f.write_text("# Bible terms\nGott\tthe Almighty\n\nHerr\tLORD\n", encoding="utf-8")
    g = Glossary.read_tsv(f)
    assert g.entries == {"Gott": "the Almighty", "Herr": "LORD"} and len(g) == 2
    assert g.extended({"Herr": "Lord God", "Wort": "Logos"}).entries == {
        "Gott": "the Almighty", "Herr": "Lord God", "Wort": "Logos"}
    assert g.extended(None) is g and g == Glossary.read_tsv(f) and hash(g) == hash(Glossary(g.entries))
    f.write_text("Gott\tthe Almighty\nHerr LORD\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"terms\.tsv, line 2: expected source<TAB>target, "
                                         r"got 1 tab-separated fields"):
        Glossary.read_tsv(f)
    with pytest.raises(ValueError, match="empty target term"):
        Glossary({"Gott": " "})
    with pytest.raises(ValueError, match="cannot read the file"):
        Glossary.read_tsv(tmp_path / "missing.tsv")
    assert TermCheck("a", "b", False, "length").to_dict() == {"source": "a", "target": "b",
                                                             "met": False, "reason": "length"}
