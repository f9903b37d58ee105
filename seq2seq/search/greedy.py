"""Batched greedy search over the decoder protocol (semantics: :mod:`seq2seq.search`)."""

from __future__ import annotations

import torch

from seq2seq.config import SearchConfig
from seq2seq.search.scoring import (
    NEG_INF,
    DecoderModel,
    Hypothesis,
    eval_mode,
    limits,
    longest_first,
    mask_,
    normalise,
    prefix_table,
)
from seq2seq.tokenizer import BOS_ID, EOS_ID


def greedy_search(model: DecoderModel, src: torch.Tensor, src_len: torch.Tensor,
                  cfg: SearchConfig,
                  prefixes: list[list[int]] | None = None) -> list[list[Hypothesis]]:
    """Batched greedy decoding; finished sentences leave the batch.

    Args:
        model: implements the decoder protocol.
        src: ``(B, S)`` long source ids (PAD-padded).
        src_len: ``(B,)`` long true source lengths.
        cfg: search options (``beam_size``/``n_best`` are ignored).
        prefixes: per sentence target ids the output must start with (or None).

    Returns:
        Per sentence (input order) a list with one :class:`Hypothesis`.
    """
    prefix = prefix_table(prefixes, src.device)  # (B, P) or None
    lim = limits(src, src_len, cfg, prefix)
    (B, S), dev, T, align = src.shape, src.device, lim.steps, cfg.return_alignment
    src_len, max_len, min_len = lim.src_len, lim.max_len, lim.min_len  # (B,) each
    out_tok = torch.zeros(B, T, dtype=torch.long, device=dev)  # (B, T)
    out_len = torch.zeros(B, dtype=torch.long, device=dev)  # (B,)
    out_lp = torch.full((B,), NEG_INF, device=dev)  # (B,)
    out_attn = torch.zeros(B, T, S, device=dev) if align else None  # (B, T, S)
    scores_on = cfg.return_scores
    out_tlp = torch.zeros(B, T, device=dev) if scores_on else None  # (B, T) per-token log-probs
    with eval_mode(model):
        sent = longest_first(src_len)  # (b,) original ids of active rows
        state = model.init_state(model.encode(src[sent], src_len[sent]))
        cum = torch.zeros(B, device=dev)  # (b,)
        hist = torch.zeros(B, T, dtype=torch.long, device=dev)  # (b, T)
        attn_hist = torch.zeros(B, T, S, device=dev) if align else None  # (b, T, S)
        lp_hist = torch.zeros(B, T, device=dev) if scores_on else None  # (b, T)
        prev = torch.full((B,), BOS_ID, dtype=torch.long, device=dev)  # (b,)
        for t in range(T):
            logp, state = model.step(prev, state)  # (b, V)
            logp = mask_(logp.float(), t, hist, min_len[sent], max_len[sent],
                          cfg.no_repeat_ngram_size, prefix[sent] if prefix is not None else None)
            best, tok = logp.max(dim=1)  # (b,), (b,) first maximum
            cum = cum + best
            hist[:, t] = tok
            if align:
                attn_hist[:, t] = state.attn.float()
            if scores_on:
                lp_hist[:, t] = best
            ended = (tok == EOS_ID) | (best == NEG_INF)  # (b,)
            if bool(ended.any()):
                ids = sent[ended]
                out_tok[ids] = hist[ended]
                out_len[ids] = t
                out_lp[ids] = cum[ended]
                if align:
                    out_attn[ids] = attn_hist[ended]
                if scores_on:
                    out_tlp[ids] = lp_hist[ended]
                keep = (~ended).nonzero().squeeze(1)  # (b',)
                if keep.numel() == 0:
                    break
                state = model.reorder_state(state, keep)
                sent, cum, hist, tok = sent[keep], cum[keep], hist[keep], tok[keep]
                if align:
                    attn_hist = attn_hist[keep]
                if scores_on:
                    lp_hist = lp_hist[keep]
            prev = tok
    scores = normalise(out_lp, out_len + 1, cfg)  # (B,)
    results = []
    for i in range(B):
        n = int(out_len[i])
        alignment = out_attn[i, :n + 1, :int(src_len[i])].clone() if align else None
        tlp = out_tlp[i, :n + 1].tolist() if scores_on else None
        results.append([Hypothesis(out_tok[i, :n].tolist() if out_lp[i] > NEG_INF else [],
                                   float(scores[i]), float(out_lp[i]), alignment, tlp)])
    return results
