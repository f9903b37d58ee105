"""Tests for seq2seq.search.forced: forced decoding of given targets, with a scripted decoder
(exact log-probs), batch invariance, and consistency with search on the tiny real model."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from scripted import B_, A, C, ScriptedModel

from seq2seq.config import SearchConfig
from seq2seq.data import pad_sequences
from seq2seq.search import forced_decode, search
from seq2seq.tokenizer import EOS_ID

TABLE = {(): {A: .5, B_: .3, EOS_ID: .2}, (A,): {C: .6, EOS_ID: .4}, (B_,): {EOS_ID: 1.0},
         (A, C): {EOS_ID: .9, A: .1}}


def test_log_probs_of_given_targets_without_search_masks() -> None:
    src = torch.tensor([[1, 1, 1], [2, 2, 0], [3, 0, 0]])
    lens = torch.tensor([3, 2, 1])
    model = ScriptedModel(TABLE)
    # min_len would mask EOS in search; forced decoding reads the model as it is
    cfg = SearchConfig(length_penalty="average", min_len=5)
    out = forced_decode(model, src, lens, [[A, C], [], [B_]], cfg, return_alignment=True)
    assert [h.tokens for h in out] == [[A, C], [], [B_]]
    assert out[0].token_log_probs == pytest.approx([math.log(.5), math.log(.6), math.log(.9)])
    assert out[1].token_log_probs == pytest.approx([math.log(.2)])
    assert out[2].log_prob == pytest.approx(math.log(.3))
    assert out[0].score == pytest.approx(math.log(.5 * .6 * .9) / 3, abs=1e-6)  # average
    assert out[0].alignment.shape == (3, 3) and out[2].alignment.shape == (2, 1)
    # one call per step for all sentences; finished ones leave the batch
    assert model.rows == [3, 2, 1]
    for i in range(3):  # batch invariance
        alone = forced_decode(ScriptedModel(TABLE), src[i:i + 1, :int(lens[i])], lens[i:i + 1],
                              [out[i].tokens], cfg)
        assert alone[0].log_prob == out[i].log_prob
    with pytest.raises(ValueError, match="2 targets for 3 sources"):
        forced_decode(model, src, lens, [[A], [A]], cfg)


def test_scoring_search_output_gives_its_log_prob(tiny_bundle: Path) -> None:
    from seq2seq.inference import Translator

    tr = Translator.from_checkpoint(tiny_bundle)
    texts = ["Und Gott sprach.", "Im Anfang war das Wort.", "Amen.", "Und er ging hinaus."]
    src, lens = pad_sequences([tr.src_tok.encode(t) for t in texts])
    for cfg in (SearchConfig(beam_size=1), SearchConfig(beam_size=4, n_best=3)):
        hyps = search(tr.model, src, lens, cfg)
        for k in range(cfg.n_best):
            scored = forced_decode(tr.model, src, lens, [h[k].tokens for h in hyps], cfg)
            for h, s in zip(hyps, scored, strict=True):
                if cfg.beam_size == 1:  # the same rows, the same kernels: bit for bit
                    assert s.log_prob == h[k].log_prob and s.score == h[k].score
                else:  # other batch shapes: float32 noise of the batched GEMMs only
                    assert s.log_prob == pytest.approx(h[k].log_prob, abs=2e-5)
                    assert s.score == pytest.approx(h[k].score, abs=2e-5)
