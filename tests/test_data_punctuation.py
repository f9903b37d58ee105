"""Tests for seq2seq.data.punctuation: which endings go, which pairs qualify, the seeded choice,
which sources end open, and the training source's usual final mark."""

from __future__ import annotations

import random

import pytest

from seq2seq.data.punctuation import drop_final_punct, ends_open, final_mark, strip_final_punct


@pytest.mark.parametrize(("text", "expected"), [
    ("Jesus weinte.", "Jesus weinte"),
    ("Wirklich?! ", "Wirklich"),          # the whole run of marks, trailing whitespace too
    ("Und dann ...", "Und dann"),         # whitespace before the run goes with it
    ("Er sagte: Geh.", "Er sagte: Geh"),  # only the final run
    ("你好。", "你好"),
    ("هل أنت بخير؟", "هل أنت بخير"),
    ("Er sagte: \"Geh.\"", "Er sagte: \"Geh.\""),  # a closing quote stops the run
    ("(Amen.)", "(Amen.)"),
    ("Das ist gut", "Das ist gut"),
    ("...", ""),
    ("", ""),
])
def test_strip_final_punct(text: str, expected: str) -> None:
    assert strip_final_punct(text) == expected


def test_only_pairs_with_marks_on_both_sides_change_and_on_both_sides() -> None:
    pairs = [("Gott ist Liebe.", "God is love."), ("Gott ist Liebe", "God is love."),
             ("Gott ist Liebe.", "God is love"), ("Amen!", "Amen!"), ("\u00bb.\u00ab", "x."),
             ("!", "Amen.")]
    out, changed = drop_final_punct(pairs, 1.0, seed=3)
    assert out == [("Gott ist Liebe", "God is love"), pairs[1], pairs[2], ("Amen", "Amen"),
                   pairs[4], pairs[5]]  # a side that would become empty keeps the pair whole
    assert changed == 2
    assert pairs[0] == ("Gott ist Liebe.", "God is love.")  # the input list is not modified


def test_the_choice_is_a_seeded_fraction_of_the_qualifying_pairs() -> None:
    pairs = [(f"Satz {i}.", f"Sentence {i}.") for i in range(4000)]
    pairs[::2] = [(f"Satz {i}", f"Sentence {i}") for i in range(0, 4000, 2)]  # not qualifying
    out, changed = drop_final_punct(pairs, 0.25, seed=7)
    chosen = [i for i, (a, b) in enumerate(zip(pairs, out, strict=True)) if a != b]
    assert len(chosen) == changed and all(i % 2 == 1 for i in chosen)
    # one draw per qualifying pair, in order, from the documented generator
    rng = random.Random("7:drop_final_punct")
    assert chosen == [i for i in range(1, 4000, 2) if rng.random() < 0.25]
    assert 450 <= changed <= 550  # 2,000 qualifying pairs at 0.25: 500 ± 2.3 sd
    assert drop_final_punct(pairs, 0.25, seed=7) == (out, changed)  # resume / every DDP rank
    assert drop_final_punct(pairs, 0.25, seed=8)[0] != out
    assert drop_final_punct(pairs, 0.0, seed=7) == (pairs, 0)


@pytest.mark.parametrize(("text", "expected"), [
    ("Gott ist Liebe", True), ("Kapitel 3", True), ("Einstellungen  \n", True),
    ("上帝是爱", True), ("Ὁ θεὸς ἀγάπη ἐστίν", True),
    ("Gott ist Liebe.", False), ("Wirklich?!", False), ("Und dann ...", False),
    ("Er sagte: \"Geh\"", False),   # a closing quote: the source's form is not plain
    ("(Amen)", False), ("Ja :-)", False), ("Preis: 5 €", False), ("", False), ("  ", False),
])
def test_ends_open(text: str, expected: bool) -> None:
    assert ends_open(text) is expected


def test_final_mark_is_the_most_frequent_last_mark_when_most_sentences_end_in_one() -> None:
    bible = ["Im Anfang war das Wort.", "Jesus weinte.", "Wer bist du?", "und sprach:",
             "Amen.  ", "Kapitel 3", ""]  # blank lines do not count
    assert final_mark(bible) == "."
    assert final_mark(["你好。", "谢谢。", "再见！"]) == "。"
    assert final_mark(["Wer?", "Was!", "Wie?", "Wo!"]) == "?"  # a tie: the mark seen first
    # fewer than half end in a mark (titles, UI strings): nothing to append
    assert final_mark(["Einstellungen", "Speichern", "Hilfe", "Datei öffnen."]) is None
    assert final_mark(["Einstellungen", "Hilfe."], min_share=0.5) == "."
    assert final_mark([]) is None
