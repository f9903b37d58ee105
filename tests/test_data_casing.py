"""Tests for seq2seq.data.casing: both sides recased, the seeded choice, what is counted."""

from __future__ import annotations

import random

from seq2seq.data.casing import recase


def test_chosen_pairs_are_recased_on_both_sides() -> None:
    pairs = [("Der Herr ist mein Hirte.", "The Lord is my shepherd."),
             ("Die Straße", "The street")]
    assert recase(pairs, 1.0, 0.0, seed=1) == (
        [("der herr ist mein hirte.", "the lord is my shepherd."), ("die straße", "the street")],
        2, 0)
    assert recase(pairs, 0.0, 1.0, seed=1) == (
        [("DER HERR IST MEIN HIRTE.", "THE LORD IS MY SHEPHERD."), ("DIE STRASSE", "THE STREET")],
        0, 2)  # Unicode's default mapping: ß -> SS
    assert pairs[0] == ("Der Herr ist mein Hirte.", "The Lord is my shepherd.")  # not modified


def test_a_pair_already_in_the_case_is_not_counted() -> None:
    pairs = [("123 und 4", "123 and 4"), ("123", "123"), ("ABC", "abc")]
    assert recase(pairs, 1.0, 0.0, seed=1) == ([pairs[0], pairs[1], ("abc", "abc")], 1, 0)
    assert recase(pairs, 0.0, 1.0, seed=1) == ([("123 UND 4", "123 AND 4"), pairs[1],
                                                ("ABC", "ABC")], 0, 2)


def test_the_choice_is_a_seeded_fraction_with_disjoint_lower_and_upper_pairs() -> None:
    pairs = [(f"Satz {i}", f"Sentence {i}") for i in range(4000)]
    out, n_lower, n_upper = recase(pairs, 0.1, 0.05, seed=7)
    lowered = [i for i, (s, t) in enumerate(out) if (s, t) == (f"satz {i}", f"sentence {i}")]
    uppered = [i for i, (s, t) in enumerate(out) if (s, t) == (f"SATZ {i}", f"SENTENCE {i}")]
    same = [i for i, p in enumerate(out) if p == pairs[i]]
    assert len(lowered) + len(uppered) + len(same) == 4000  # every pair is one of the three
    assert (len(lowered), len(uppered)) == (n_lower, n_upper)
    # one draw per pair, in order, from the documented generator
    rng = random.Random("7:recase")
    draws = [rng.random() for _ in pairs]
    assert lowered == [i for i, r in enumerate(draws) if r < 0.1]
    assert uppered == [i for i, r in enumerate(draws) if 0.1 <= r < 0.15]
    assert 340 <= n_lower <= 460 and 150 <= n_upper <= 250  # 400 ± 19 sd, 200 ± 14 sd
    assert recase(pairs, 0.1, 0.05, seed=7) == (out, n_lower, n_upper)  # resume / DDP ranks
    assert recase(pairs, 0.1, 0.05, seed=8)[0] != out
    assert recase(pairs, 0.0, 0.0, seed=7) == (pairs, 0, 0)
