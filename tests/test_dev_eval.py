"""Tests for seq2seq.training.dev_eval on the tiny real bundle: dev loss/perplexity and BLEU/chrF."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import sacrebleu
import torch
import torch.nn.functional as F

from seq2seq.checkpoint import load_bundle, tokenizers_from_bundle
from seq2seq.config import SearchConfig
from seq2seq.data import ParallelDataset, collate, load_parallel
from seq2seq.inference.translator import Translator
from seq2seq.model import build_model
from seq2seq.training.dev_eval import dev_scores

CPU = torch.device("cpu")
GREEDY = SearchConfig(beam_size=1, length_penalty="none", batch_size=64)


@pytest.fixture(scope="module")
def parts(tiny_bundle: Path, tiny_corpus: dict[str, Path]) -> dict:
    bundle = load_bundle(tiny_bundle)
    src_tok, tgt_tok = tokenizers_from_bundle(bundle)
    pairs = load_parallel(tiny_corpus["src_dev"], tiny_corpus["tgt_dev"])
    return {"bundle": bundle, "model": build_model(bundle), "src_tok": src_tok,
            "tgt_tok": tgt_tok, "pairs": pairs,
            "dev_set": ParallelDataset.from_pairs(pairs, src_tok, tgt_tok)}


def test_a_translator_around_the_live_model_matches_the_bundle_translator(parts: dict) -> None:
    """Dev BLEU during training goes through the same Translator path as evaluation."""
    texts = [p[0] for p in parts["pairs"]]
    live = Translator(parts["model"], parts["src_tok"], parts["tgt_tok"], device=CPU)
    one_by_one = SearchConfig(beam_size=1, length_penalty="none", batch_size=1)
    hyps = [t.text for t in live.translate(texts, one_by_one)]
    ref = Translator.from_bundle(parts["bundle"]).translate(texts, one_by_one)
    assert hyps == [t.text for t in ref] and any(hyps)
    # batched, reversed input, an empty source in the middle: same strings, input order, "" kept
    rev = texts[::-1]
    rev.insert(3, "")
    out = [t.text for t in live.translate(rev, GREEDY)]
    assert out[3] == ""
    assert out[:3] + out[4:] == hyps[::-1]


def _scores(parts: dict, label_smoothing: float = 0.0, max_tokens: int = 400) -> dict[str, float]:
    """Greedy dev scores (n_best and the beam are overridden by dev_scores' arguments)."""
    return dev_scores(parts["model"], parts["dev_set"], parts["pairs"], parts["src_tok"],
                      parts["tgt_tok"], max_tokens=max_tokens, label_smoothing=label_smoothing,
                      search_cfg=SearchConfig(n_best=3, length_penalty="none"), beam_size=1,
                      device=CPU)


def test_dev_loss_is_the_per_token_nll_of_the_dev_set(parts: dict) -> None:
    model, ds = parts["model"], parts["dev_set"]
    nll_sum, ntok = 0.0, 0
    with torch.no_grad():
        for i in range(len(ds)):  # one unpadded sentence at a time
            b = collate([ds[i]])
            logits = model(b.src, b.src_len, b.tgt_in)  # (1, T, V)
            nll_sum += F.cross_entropy(logits[0], b.tgt_out[0], reduction="sum").item()
            ntok += b.ntokens
    scores = _scores(parts)
    assert scores["nll"] == pytest.approx(nll_sum / ntok, rel=1e-5)
    assert scores["loss"] == pytest.approx(scores["nll"], rel=1e-6)  # no smoothing
    assert scores["ppl"] == pytest.approx(math.exp(nll_sum / ntok), rel=1e-5)
    # smoothing changes the loss only; the batching (max_tokens) changes nothing
    smoothed = _scores(parts, label_smoothing=0.1, max_tokens=60)
    assert smoothed["nll"] == pytest.approx(scores["nll"], rel=1e-5)
    assert smoothed["loss"] != pytest.approx(scores["loss"], rel=1e-3)


def test_dev_bleu_and_chrf_are_sacrebleu_of_the_greedy_output(parts: dict) -> None:
    model = parts["model"].train()  # the mode is restored afterwards
    try:
        scores = _scores(parts)
        assert model.training
    finally:
        model.eval()
    live = Translator(model, parts["src_tok"], parts["tgt_tok"], device=CPU)
    hyps = [t.text for t in live.translate([p[0] for p in parts["pairs"]], GREEDY)]
    refs = [p[1] for p in parts["pairs"]]
    assert scores["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    assert scores["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score)
    assert scores["chrf"] > 0.0
