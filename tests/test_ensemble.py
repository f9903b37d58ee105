"""Tests for seq2seq.inference.ensemble: two scripted models averaged per step (exact hypotheses
and scores), real tiny bundles through the Translator, and mismatched vocabularies."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from scripted import B_, A, C, ScriptedModel

from seq2seq.checkpoint import load_bundle, save_bundle
from seq2seq.config import SearchConfig
from seq2seq.inference.ensemble import Ensemble
from seq2seq.inference.translator import Translator
from seq2seq.search import beam_search, forced_decode, greedy_search
from seq2seq.tokenizer import EOS_ID

ONE = {(): {A: .6, B_: .4}, (A,): {EOS_ID: .5, C: .5}, (B_,): {EOS_ID: 1.0},
       (A, C): {EOS_ID: 1.0}}
TWO = {(): {A: .2, B_: .8}, (A,): {EOS_ID: .9, C: .1}, (B_,): {EOS_ID: .5, C: .5},
       (B_, C): {EOS_ID: 1.0}}


class Scripted(ScriptedModel, torch.nn.Module):
    """A scripted decoder that is also an nn.Module (as Ensemble members are)."""

    def __init__(self, table: dict) -> None:
        torch.nn.Module.__init__(self)
        ScriptedModel.__init__(self, table)
        self.cfg = None


def mean_lp(*probs: float) -> float:
    return sum(math.log(p) for p in probs) / len(probs)


def test_log_probs_are_averaged_at_every_step() -> None:
    ens = Ensemble([Scripted(ONE), Scripted(TWO)])
    src, lens = torch.tensor([[1, 1]]), torch.tensor([2])
    cfg = SearchConfig(beam_size=2, n_best=2, length_penalty="none", min_len=0, max_len_a=0.0,
                       max_len_b=5)
    # step 1: A = (ln .6 + ln .2)/2 = -1.06, B_ = (ln .4 + ln .8)/2 = -0.57
    # A </s>: -1.06 + (ln .5 + ln .9)/2 = -1.45; B_ </s>: -0.57 + (ln 1 + ln .5)/2 = -0.92
    hyps = beam_search(ens, src, lens, cfg)[0]
    assert [h.tokens for h in hyps] == [[B_], [A]]
    assert hyps[0].log_prob == pytest.approx(mean_lp(.4, .8) + mean_lp(1.0, .5), abs=1e-6)
    assert hyps[1].log_prob == pytest.approx(mean_lp(.6, .2) + mean_lp(.5, .9), abs=1e-6)
    greedy = greedy_search(ens, src, lens, cfg)[0][0]
    assert greedy.tokens == [B_] and greedy.log_prob == pytest.approx(hyps[0].log_prob)
    # a token one member gives probability 0 is impossible for the ensemble
    forced = forced_decode(ens, src, lens, [[B_, C]], cfg)[0]  # ONE: C after B_ is 0
    assert forced.log_prob == float("-inf")


def test_an_ensemble_of_one_is_that_model(tiny_bundle: Path) -> None:
    single = Translator.from_checkpoint(tiny_bundle)
    ens = Translator.from_checkpoint([tiny_bundle, tiny_bundle])
    assert isinstance(ens.model, Ensemble) and len(ens.model.members) == 2
    texts = ["Und Gott sprach.", "Im Anfang war das Wort.", "Amen."]
    cfg = SearchConfig(beam_size=3, return_alignment=True)
    a, b = single.translate(texts, cfg), ens.translate(texts, cfg)
    assert [t.tokens for t in a] == [t.tokens for t in b]  # mean of two equal log-probs
    assert [t.score for t in a] == pytest.approx([t.score for t in b], abs=1e-5)
    torch.testing.assert_close(torch.tensor(b[0].alignment), torch.tensor(a[0].alignment))
    info = ens.info()
    assert [m["path"] for m in info["ensemble"]] == [str(tiny_bundle)] * 2
    assert info["parameters"] == 2 * single.info()["parameters"]


def test_members_with_other_vocabularies_are_refused(tiny_bundle: Path, tiny_corpus,
                                                     tmp_path: Path) -> None:
    from conftest import build_tiny_bundle

    from seq2seq.tokenizer import train_tokenizers

    other = load_bundle(tiny_bundle)
    src_tok, _ = train_tokenizers(["ein zwei drei vier"] * 20, ["one two"] * 20, 30,
                                  hard_vocab_limit=False)
    other["spm"]["src"] = torch.tensor(list(src_tok.to_bytes()), dtype=torch.uint8)
    save_bundle(tmp_path / "other.pt", other)
    with pytest.raises(ValueError, match=r"cannot ensemble .*other.pt with .*best.pt: their "
                                         r"source sentencepiece models differ"):
        Translator.from_checkpoint([tiny_bundle, tmp_path / "other.pt"])
    # a second, independently seeded model with the same vocabulary ensembles fine
    second = build_tiny_bundle(tiny_corpus, seed=1, steps=20)
    save_bundle(tmp_path / "second.pt", second)
    ens = Translator.from_checkpoint([tiny_bundle, tmp_path / "second.pt"])
    assert len(ens.translate(["Amen."], SearchConfig(beam_size=2))) == 1
