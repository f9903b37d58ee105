"""Tests for seq2seq.metrics with real sacreBLEU, against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from seq2seq.metrics import corpus_scores


def test_identical_corpus_scores_100() -> None:
    refs = ["In the beginning God created the heavens and the earth.", "Jesus wept."]
    scores = corpus_scores(refs, refs)
    assert scores["bleu"] == pytest.approx(100.0)
    assert scores["chrf"] == pytest.approx(100.0)


def test_bleu_hand_checked() -> None:
    # 13a tokens: the cat sat on the mat / the cat sat on a mat; equal lengths -> BP = 1.
    # n-gram precisions 5/6, 3/5, 2/4, 1/3 -> BLEU = 100 * (1/12) ** (1/4)
    scores = corpus_scores(["the cat sat on the mat"], ["the cat sat on a mat"])
    assert scores["bleu"] == pytest.approx(100 * (1 / 12) ** 0.25)


def test_bleu_brevity_penalty() -> None:
    # hyp is the 4-token prefix of a 6-token ref: all precisions 1, BP = exp(1 - 6/4)
    scores = corpus_scores(["a b c d"], ["a b c d e f"])
    assert scores["bleu"] == pytest.approx(100 * math.exp(1 - 6 / 4))


def test_chrf_hand_checked() -> None:
    # characters (spaces removed) abc vs abd: 1-gram P = R = 2/3, 2-gram 1/2, 3-gram 0;
    # chrF averages over the orders present: (2/3 + 1/2 + 0) / 3 = 7/18 and F_beta = P when P = R
    scores = corpus_scores(["a b c"], ["abd"])
    assert scores["chrf"] == pytest.approx(100 * 7 / 18)


def test_signatures_and_options() -> None:
    scores = corpus_scores(["Hello"], ["hello"], lowercase=True, tokenize="intl")
    assert scores["bleu"] == pytest.approx(0.0)  # one unigram only: higher orders have no match
    assert "case:lc" in scores["bleu_signature"] and "tok:intl" in scores["bleu_signature"]
    assert scores["bleu_signature"].startswith("nrefs:1|")
    assert "nc:6|nw:0" in scores["chrf_signature"]


def test_empty_and_mismatched() -> None:
    with pytest.raises(ValueError, match="empty corpus"):
        corpus_scores([], [])
    assert corpus_scores([""], ["a b"])["chrf"] == 0.0
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        corpus_scores(["a", "b"], ["a"])
