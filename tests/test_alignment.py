"""Tests for seq2seq.inference.alignment: subword attention -> Pharaoh word alignments."""

from __future__ import annotations

from seq2seq.inference.alignment import pharaoh, word_alignment, word_index

W = "\u2581"


def test_pieces_map_to_whitespace_words() -> None:
    pieces = [f"{W}Im", f"{W}An", "fang", f"{W}war", f"{W}", ",", "x"]
    assert word_index(pieces) == [0, 1, 1, 2, 3, 3, 3]
    assert word_index(["ab", f"{W}c"]) == [0, 1]  # a first piece without the marker is word 0


def test_each_target_piece_goes_to_its_most_attended_source_word() -> None:
    src = [f"{W}Im", f"{W}An", "fang", f"{W}war"]           # words: Im Anfang war
    tgt = [f"{W}In", f"{W}the", f"{W}begin", "ning", f"{W}was", "</s>"]
    att = [[.9, .05, .05, 0],    # In -> Im
           [.6, .2, .2, 0],      # the -> Im
           [0, .3, .7, 0],       # begin -> Anfang (piece "fang")
           [0, .8, .1, .1],      # ning -> Anfang: same pair, not repeated
           [.1, .1, .1, .7],     # was -> war
           [.25, .25, .25, .25]]  # EOS row: ignored
    pairs = word_alignment(src, tgt, att)
    assert pairs == [(0, 0), (0, 1), (1, 2), (2, 3)]
    assert pharaoh(pairs) == "0-0 0-1 1-2 2-3"
    tie = word_alignment([f"{W}a", f"{W}b"], [f"{W}x"], [[.5, .5]])
    assert tie == [(0, 0)]  # the first maximum
    assert word_alignment([], [f"{W}x"], [[]]) == [] and word_alignment(src, ["</s>"], [[1]]) == []
