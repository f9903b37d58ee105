"""Batched beam search over the decoder protocol (semantics: :mod:`seq2seq.search`)."""

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
from seq2seq.search.topk import beam_topk, first_max_is
from seq2seq.tokenizer import BOS_ID, EOS_ID


def beam_search(model: DecoderModel, src: torch.Tensor, src_len: torch.Tensor,
                cfg: SearchConfig,
                prefixes: list[list[int]] | None = None) -> list[list[Hypothesis]]:
    """Batched beam search; :mod:`seq2seq.search` gives the exact semantics.

    Args:
        model, src, src_len: the decoder-protocol model, ``(B, S)`` PAD-padded source ids and
            ``(B,)`` true source lengths, as for :func:`~seq2seq.search.greedy.greedy_search`.
        cfg: search options.
        prefixes: per sentence target ids the output must start with (or None): forced while
            the prefix lasts, the beam continues after it.

    Returns:
        Per sentence (input order) its ``n_best`` best hypotheses, best first (fewer only if
        fewer than ``n_best`` could be finished).
    """
    K = cfg.beam_size
    prefix = prefix_table(prefixes, src.device)  # (B, P) or None
    lim = limits(src, src_len, cfg, prefix)
    (B, S), dev, T, align = src.shape, src.device, lim.steps, cfg.return_alignment
    src_len, max_len, min_len = lim.src_len, lim.max_len, lim.min_len  # (B,) each
    # results for all B sentences, filled when a sentence is done
    out_score = torch.full((B, K), NEG_INF, dtype=torch.float64, device=dev)  # (B, K)
    out_lp = torch.full((B, K), NEG_INF, device=dev)  # (B, K)
    out_len = torch.zeros(B, K, dtype=torch.long, device=dev)  # (B, K)
    out_tok = torch.zeros(B, K, T, dtype=torch.long, device=dev)  # (B, K, T)
    out_attn = torch.zeros(B, K, T, S, device=dev) if align else None  # (B, K, T, S)
    scores_on = cfg.return_scores
    out_tlp = torch.zeros(B, K, T, device=dev) if scores_on else None  # (B, K, T)
    with eval_mode(model):
        # until the first reorder the state holds ONE row per sentence: its K slots would all
        # be the same BOS prefix, so the first step runs on B rows and its log-probs are shared
        sent = longest_first(src_len)  # (b,) original ids of active sentences
        state = model.init_state(model.encode(src[sent], src_len[sent]))
        live = torch.full((B, K), NEG_INF, device=dev)  # (b, K) raw scores; -inf = empty slot
        live[:, 0] = 0.0
        hist = torch.zeros(B * K, T, dtype=torch.long, device=dev)  # (N, T)
        attn_hist = torch.zeros(B * K, T, S, device=dev) if align else None  # (N, T, S)
        lp_hist = torch.zeros(B * K, T, device=dev) if scores_on else None  # (N, T) token lps
        fin_score = torch.full((B, K), NEG_INF, dtype=torch.float64, device=dev)  # (b, K) best-first
        fin_lp = torch.full((B, K), NEG_INF, device=dev)  # (b, K)
        fin_len = torch.zeros(B, K, dtype=torch.long, device=dev)  # (b, K)
        fin_tok = torch.zeros(B, K, T, dtype=torch.long, device=dev)  # (b, K, T)
        fin_attn = torch.zeros(B, K, T, S, device=dev) if align else None  # (b, K, T, S)
        fin_tlp = torch.zeros(B, K, T, device=dev) if scores_on else None  # (b, K, T)
        prev = torch.full((B,), BOS_ID, dtype=torch.long, device=dev)  # (B,) first step
        for t in range(T):
            b = sent.numel()
            logp, state = model.step(prev, state)  # (N, V); (B, V) at t = 0
            step_attn = state.attn
            if t == 0:
                logp = logp.repeat_interleave(K, dim=0)  # (N, V) same row for every slot
                step_attn = step_attn.repeat_interleave(K, dim=0) if align else None
            V = logp.shape[1]
            row_sent = sent.repeat_interleave(K)  # (N,)
            logp = mask_(logp.float(), t, hist, min_len[row_sent], max_len[row_sent],
                          cfg.no_repeat_ngram_size,
                          prefix[row_sent] if prefix is not None else None)
            if align:
                attn_hist[:, t] = step_attn.float()
            # best 2K of the b x (K * V) extensions live[slot] + logp[slot, token]
            vals, idx, row_max = beam_topk(logp, live, min(2 * K, K * V))  # (b, 2K), (b, 2K), (N,)
            slot, tok = idx // V, idx % V  # (b, 2K)
            is_eos = tok == EOS_ID
            base = torch.arange(b, device=dev)[:, None] * K  # (b, 1) first row of each sentence
            # finish EOS extensions (per parent slot): those ranked within the first K of all
            # extensions (the standard rule) and those that are their parent's best extension
            eos_lp = live + logp[:, EOS_ID].view(b, K)  # (b, K) same values as in cand
            ranked = torch.zeros(b, K, dtype=torch.long, device=dev).scatter_add_(
                1, slot[:, :K], is_eos[:, :K].long()) > 0  # (b, K)
            ranked |= first_max_is(logp, row_max, EOS_ID).view(b, K)
            new = ranked & (eos_lp > NEG_INF)  # (b, K)
            if bool(new.any()):
                new_score = torch.where(new, normalise(eos_lp, t + 1, cfg), NEG_INF)  # (b, K)
                all_score = torch.cat([fin_score, new_score], 1)  # (b, 2K)
                all_score, order = all_score.sort(dim=1, descending=True, stable=True)
                order = order[:, :K]  # (b, K)
                fin_score = all_score[:, :K]
                new_lp = torch.where(new, eos_lp, NEG_INF)  # (b, K)
                fin_lp = torch.cat([fin_lp, new_lp], 1).gather(1, order)
                fin_len = torch.cat([fin_len, torch.full_like(fin_len, t)], 1).gather(1, order)
                new_tok = hist.view(b, K, T)  # (b, K, T)
                fin_tok = torch.cat([fin_tok, new_tok], 1).take_along_dim(order[:, :, None], 1)
                if align:
                    new_attn = attn_hist.view(b, K, T, S)  # (b, K, T, S)
                    fin_attn = torch.cat([fin_attn, new_attn], 1).take_along_dim(
                        order[:, :, None, None], 1)
                if scores_on:
                    new_tlp = lp_hist.view(b, K, T).clone()  # (b, K, T) + this step's EOS
                    new_tlp[:, :, t] = logp[:, EOS_ID].view(b, K)
                    fin_tlp = torch.cat([fin_tlp, new_tlp], 1).take_along_dim(
                        order[:, :, None], 1)
            # next live beam: the first K non-EOS extensions
            key = is_eos.long() * idx.shape[1] + torch.arange(idx.shape[1], device=dev)  # (b, 2K)
            pick = key.argsort(dim=1)[:, :K]  # (b, K)
            live = torch.where(is_eos.gather(1, pick), NEG_INF, vals.gather(1, pick))  # (b, K)
            live_slot, live_tok = slot.gather(1, pick), tok.gather(1, pick)  # (b, K)
            # stopping
            best_live = live.max(dim=1).values  # (b,)
            full = fin_score[:, -1] > NEG_INF  # (b,) K finished
            beaten = normalise(best_live, t + 1, cfg) <= fin_score[:, -1]
            done = (best_live == NEG_INF) | (full & beaten)  # (b,)
            if bool(done.any()):
                ids = sent[done]
                out_score[ids], out_lp[ids], out_len[ids] = fin_score[done], fin_lp[done], fin_len[done]
                out_tok[ids] = fin_tok[done]
                if align:
                    out_attn[ids] = fin_attn[done]
                if scores_on:
                    out_tlp[ids] = fin_tlp[done]
            keep = (~done).nonzero().squeeze(1)  # (b',)
            if keep.numel() == 0:
                break
            rows = (base + live_slot)[keep].view(-1)  # (b'*K,)
            state = model.reorder_state(state, rows // K if t == 0 else rows)
            hist = hist[rows]
            prev = live_tok[keep].view(-1)  # (b'*K,)
            hist[:, t] = prev
            if align:
                attn_hist = attn_hist[rows]
            if scores_on:
                lp_hist = lp_hist[rows]
                lp_hist[:, t] = logp[rows, prev]
            sent, live = sent[keep], live[keep]
            fin_score, fin_lp, fin_len, fin_tok = (fin_score[keep], fin_lp[keep], fin_len[keep],
                                                   fin_tok[keep])
            if align:
                fin_attn = fin_attn[keep]
            if scores_on:
                fin_tlp = fin_tlp[keep]
    return _collect(out_score, out_lp, out_len, out_tok, out_attn, src_len, cfg.n_best, out_tlp)


def _collect(score: torch.Tensor, lp: torch.Tensor, length: torch.Tensor, tok: torch.Tensor,
             attn: torch.Tensor | None, src_len: torch.Tensor,
             n_best: int, tlp: torch.Tensor | None = None) -> list[list[Hypothesis]]:
    """Python hypotheses from the result tensors.

    Args:
        score, lp: ``(B, K)``; length: ``(B, K)`` long token counts; tok: ``(B, K, T)``;
        attn: ``(B, K, T, S)`` or None; src_len: ``(B,)``.
        n_best: hypotheses per sentence.
        tlp: ``(B, K, T)`` per-token log-probs, or None.

    Returns:
        Per sentence up to ``n_best`` hypotheses, best first.
    """
    score_l, lp_l, len_l = score.tolist(), lp.tolist(), length.tolist()
    results = []
    for i in range(score.shape[0]):
        hyps = []
        for j in range(n_best):
            if lp_l[i][j] == NEG_INF:
                break
            n = len_l[i][j]
            alignment = attn[i, j, :n + 1, :int(src_len[i])].clone() if attn is not None else None
            tok_lp = tlp[i, j, :n + 1].tolist() if tlp is not None else None
            hyps.append(Hypothesis(tok[i, j, :n].tolist(), score_l[i][j], lp_l[i][j], alignment,
                                   tok_lp))
        if not hyps:  # dead end: nothing could be finished
            empty = attn.new_zeros(0, int(src_len[i])) if attn is not None else None
            hyps.append(Hypothesis([], NEG_INF, NEG_INF, empty))
        results.append(hyps)
    return results
