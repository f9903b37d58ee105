"""Validation during training: dev loss/perplexity and sacreBLEU of search output.

The loss is the training objective under teacher forcing (label-smoothed, padding-masked, per
target token, in the training precision); BLEU and chrF score the best hypotheses of a
:class:`~seq2seq.inference.Translator` around the live model (greedy or beam) against the raw dev
references: the same code path as ``seq2seq-evaluate``. Runs in the calling process; the trainer
calls it on rank 0 only.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from seq2seq.config import INFERENCE_PRECISION, SearchConfig
from seq2seq.data import ParallelDataset, TokenBatchSampler
from seq2seq.inference import Translator
from seq2seq.metrics import corpus_scores
from seq2seq.model import Seq2Seq
from seq2seq.runtime import autocast, resolve_precision
from seq2seq.tokenizer import Tokenizer


@torch.no_grad()
def dev_scores(model: Seq2Seq, dev_set: ParallelDataset, dev_pairs: list[tuple[str, str]],
               src_tok: Tokenizer, tgt_tok: Tokenizer, *, max_tokens: int,
               label_smoothing: float, search_cfg: SearchConfig, beam_size: int,
               device: torch.device, amp_dtype: torch.dtype | None = None) -> dict[str, float]:
    """Dev loss/perplexity (teacher forcing) and BLEU/chrF of search output.

    Args:
        model: the model; put in eval mode meanwhile, its mode restored afterwards.
        dev_set: the encoded dev pairs (loss).
        dev_pairs: the dev text pairs (sources to translate, references to score against).
        src_tok: source tokenizer.
        tgt_tok: target tokenizer.
        max_tokens: padded tokens per loss batch.
        label_smoothing: label smoothing of the loss (``nll`` is reported unsmoothed).
        search_cfg: search settings (``n_best`` and ``return_alignment`` are overridden).
        beam_size: beam for the BLEU translations (1 = greedy).
        device: where ``model`` runs.
        amp_dtype: autocast dtype of the loss pass (the training precision; None = fp32). The
            translations use :data:`~seq2seq.config.INFERENCE_PRECISION`.

    Returns:
        ``{"loss", "nll", "ppl", "bleu", "chrf"}`` (loss and nll per target token; perplexity
        ``exp(nll)``, capped at ``exp(50)``).
    """
    was_training = model.training
    model.eval()
    try:
        loss_sum = nll_sum = 0.0
        ntok = 0
        for idx in TokenBatchSampler(dev_set.sizes, max_tokens, shuffle=False):
            b = dev_set.batch(idx).to(device)
            with autocast(device, amp_dtype):
                out = model(b.src, b.src_len, b.tgt_in, b.tgt_out, label_smoothing)
            loss_sum += float(out.loss)
            nll_sum += float(out.nll)
            ntok += out.ntokens
        scfg = dataclasses.replace(search_cfg, beam_size=beam_size, n_best=1,
                                   return_alignment=False)
        # dev translations in the precision every translating entry point uses by default, so
        # dev BLEU here is what seq2seq-evaluate gives for the same weights
        translator = Translator(model, src_tok, tgt_tok, device=device,
                                amp_dtype=resolve_precision(INFERENCE_PRECISION, device))
        hyps = [t.text for t in translator.translate([p[0] for p in dev_pairs], scfg)]
        scores = corpus_scores(hyps, [p[1] for p in dev_pairs])
    finally:
        model.train(was_training)
    nll = nll_sum / max(ntok, 1)
    return {"loss": loss_sum / max(ntok, 1), "nll": nll, "ppl": math.exp(min(nll, 50.0)),
            "bleu": float(scores["bleu"]), "chrf": float(scores["chrf"])}
