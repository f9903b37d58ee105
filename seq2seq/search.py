"""Batched greedy and beam search over the decoder protocol.

Search talks to the model only through::

    enc = model.encode(src, src_len)              # any encoder output
    state = model.init_state(enc)                 # state for B rows
    logp, state = model.step(prev_tokens, state)  # (N,) long -> (N, V) log-probs; state.attn (N, S)
    state = model.reorder_state(state, index)     # (N',) long: select / reorder / repeat rows

All sentences of a batch and all their hypotheses advance in ONE ``step`` call per time step
(``N = b * beam`` rows for the ``b`` sentences still active; the first step runs one row per
sentence, since all beam slots still hold the same BOS prefix); sentences that are done are dropped
from the state at once, so they stop costing compute. The step loop has no Python loop over
sentences or hypotheses; Python lists are built only once, at the end.

Exact semantics (``t`` = number of tokens generated before the current step, BOS not counted):

* **Hypotheses.** ``tokens`` exclude BOS and EOS. Every returned hypothesis ends with EOS, whose
  log-prob is included in ``log_prob`` (the raw sum of token log-probs).
* **Length** ``L = len(tokens) + 1`` (EOS counted, so the empty output has ``L = 1``).
  ``score`` = ``log_prob`` (``"none"``), ``log_prob / L`` (``"average"``) or
  ``log_prob / ((5 + L) / 6) ** alpha`` (``"gnmt"``).
* **Maximum length** ``max_len = floor(max_len_a * src_len + max_len_b)`` (clamped at 0) with the
  TRUE source length, EOS excluded. At ``t == max_len`` every token but EOS is masked, so live
  hypotheses are force-finished with their real EOS log-prob.
* **Minimum length.** EOS is masked (log-prob ``-inf``) while ``t < min(min_len, max_len)``.
* **n-gram blocking** (``no_repeat_ngram_size = n > 0``): a token that would complete an n-gram
  already present in the hypothesis' tokens gets log-prob ``-inf``. EOS is never blocked.
* **Beam step** (the fairseq / Hugging Face formulation, plus one rule). Live hypotheses are
  ranked by raw cumulative log-prob. Of all ``beam * V`` extensions the best ``2 * beam`` are
  taken; the first ``beam`` non-EOS ones become the next live beam. The EOS extension of a live
  hypothesis is finished (offered to the sentence's finished set, which keeps the ``beam`` best by
  ``score``) when it ranks within the first ``beam`` of all extensions (the standard rule) OR
  when EOS is that hypothesis' own best next token (what greedy decoding would do from there).
  The added rule never loses an ending that greedy would take from a prefix in the beam, so with
  ``"none"`` the beam is at least as good as greedy whenever the greedy prefix stays in the beam;
  no beam search guarantees more (pruning can drop the greedy prefix). Extensions with log-prob
  ``-inf`` are never used. Finished hypotheses are never extended.
* **Stopping.** A sentence is done when no live hypothesis is left, or when it has ``beam``
  finished hypotheses and the best live one cannot beat the worst finished one. The bound used
  is the live hypothesis' score *as if it ended now* (its cumulative log-prob normalised with
  ``L = t + 1``, the length of the hypotheses finished at this step; ``<=`` means it cannot beat,
  since ties keep the earlier hypothesis). For ``"none"`` (and ``"gnmt"`` with ``alpha = 0``) this
  bound is exact because log-probs are ``<= 0``; for ``"average"`` and ``"gnmt"`` it is the usual
  heuristic (Hugging Face ``early_stopping=False``), since a longer continuation divides by a
  larger penalty. With ``beam_size = 1`` this makes beam search return exactly the greedy output.
* **Ties** are broken by lower index everywhere: among extensions by ``beam_slot * V + token``
  (so a better-ranked parent and then a lower token id win), in the finished set by
  earlier-finished-first then parent slot; greedy and "own best token" use the first maximum. ``n_best`` hypotheses come
  best-first.
* **Batch invariance.** Nothing depends on other sentences or padding: lengths use the true
  ``src_len``, top-k and all bookkeeping are per sentence, alignments are trimmed to the real
  source length. The only coupling left is floating-point noise of the model's batched kernels.
  (Internally the sentences are decoded longest first, which lets the model's attention skip
  most padding; results come back in input order.)
* **Dead ends.** If masking leaves a sentence with no finite extension and nothing finished (only
  possible with a tiny vocabulary), it gets one empty hypothesis with score ``-inf``.

Greedy search (``greedy_search``) takes the first maximum of the masked log-probs each step and
shares the masks, lengths and scoring above; it returns one hypothesis per sentence.

The model is put in eval mode for the search (and restored afterwards) and is called under
``torch.inference_mode()``. Search may modify the log-prob tensors ``step`` returns in place.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from seq2seq.config import SearchConfig
from seq2seq.tokenizer import BOS_ID, EOS_ID
from seq2seq.topk import beam_topk, first_max_is

NEG_INF = float("-inf")
LENGTH_PENALTIES = ("gnmt", "average", "none")


@dataclass
class Hypothesis:
    """One finished output sequence.

    Attributes:
        tokens: target ids without BOS/EOS.
        score: length-normalised score used for ranking (see module docstring).
        log_prob: raw sum of token log-probs, EOS included.
        alignment: ``(len(tokens) + 1, S_real)`` attention rows (last row = EOS step), or None.
    """

    tokens: list[int]
    score: float
    log_prob: float
    alignment: torch.Tensor | None = None


class DecoderModel(Protocol):
    """The decoder protocol search needs (see module docstring)."""

    def encode(self, src: torch.Tensor, src_len: torch.Tensor) -> Any: ...

    def init_state(self, enc: Any) -> Any: ...

    def step(self, prev_tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]: ...

    def reorder_state(self, state: Any, index: torch.Tensor) -> Any: ...


def check_config(cfg: SearchConfig) -> None:
    """Raise ``ValueError`` naming the offending key if ``cfg`` is not usable."""
    if cfg.beam_size < 1:
        raise ValueError(f"search.beam_size must be >= 1, got {cfg.beam_size}")
    if not 1 <= cfg.n_best <= cfg.beam_size:
        raise ValueError(f"search.n_best must be in [1, beam_size={cfg.beam_size}], got {cfg.n_best}")
    if cfg.length_penalty not in LENGTH_PENALTIES:
        raise ValueError(
            f"search.length_penalty must be one of {LENGTH_PENALTIES}, got {cfg.length_penalty!r}")
    if cfg.min_len < 0:
        raise ValueError(f"search.min_len must be >= 0, got {cfg.min_len}")
    if cfg.no_repeat_ngram_size < 0:
        raise ValueError(f"search.no_repeat_ngram_size must be >= 0, got {cfg.no_repeat_ngram_size}")
    if not (math.isfinite(cfg.max_len_a) and math.isfinite(cfg.max_len_b)):
        raise ValueError("search.max_len_a and search.max_len_b must be finite")


def normalise(log_prob: torch.Tensor, length: torch.Tensor | int, cfg: SearchConfig) -> torch.Tensor:
    """Length-normalised score.

    Args:
        log_prob: ``(...)`` raw summed log-probs.
        length: ``(...)`` or scalar ``L`` (tokens + EOS).
        cfg: search options (``length_penalty``, ``alpha``).

    Returns:
        ``(...)`` float64 scores (float64 everywhere, so greedy and beam agree bit for bit).
    """
    log_prob = log_prob.double()
    if cfg.length_penalty == "none":
        return log_prob
    length = torch.as_tensor(length, dtype=torch.float64, device=log_prob.device)
    if cfg.length_penalty == "average":
        return log_prob / length
    return log_prob / ((5.0 + length) / 6.0) ** cfg.alpha


def max_lengths(src_len: torch.Tensor, cfg: SearchConfig) -> torch.Tensor:
    """``floor(max_len_a * src_len + max_len_b)`` clamped at 0, from the true lengths.

    Args:
        src_len: ``(B,)`` long.

    Returns:
        ``(B,)`` long maximum number of output tokens (EOS excluded).
    """
    return torch.floor(src_len.double() * cfg.max_len_a + cfg.max_len_b).long().clamp(min=0)


@contextmanager
def _eval_mode(model: Any) -> Iterator[None]:
    """Eval mode + inference mode for the duration of a search; restores the training flag."""
    was_training = bool(getattr(model, "training", False))
    if was_training:
        model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        if was_training:
            model.train()


def _mask_(logp: torch.Tensor, t: int, hist: torch.Tensor, min_len: torch.Tensor,
           max_len: torch.Tensor, ngram: int) -> torch.Tensor:
    """Apply min length, forced EOS at max length and n-gram blocking.

    Args:
        logp: ``(N, V)`` log-probs of this step (modified in place where possible).
        t: tokens generated so far.
        hist: ``(N, >= t)`` generated tokens; the first ``t`` columns are used.
        min_len, max_len: ``(N,)`` long per-row limits.
        ngram: no-repeat n-gram size (0 = off).

    Returns:
        ``(N, V)`` masked log-probs.
    """
    early = min_len > t  # (N,)
    if bool(early.any()):
        logp[:, EOS_ID].masked_fill_(early, NEG_INF)
    if ngram > 0 and t >= ngram:
        win = hist[:, :t].unfold(1, ngram, 1)  # (N, t-n+1, n)
        suffix = hist[:, t - ngram + 1:t]  # (N, n-1)
        match = (win[:, :, :-1] == suffix[:, None, :]).all(2)  # (N, t-n+1)
        rows, pos = match.nonzero(as_tuple=True)
        logp[rows, win[rows, pos, -1]] = NEG_INF
    forced = max_len <= t  # (N,)
    if bool(forced.any()):
        eos = logp[:, EOS_ID].clone()  # (N,)
        logp.masked_fill_(forced[:, None], NEG_INF)
        logp[:, EOS_ID] = torch.where(forced, eos, logp[:, EOS_ID])
    return logp


def _longest_first(src_len: torch.Tensor) -> torch.Tensor:
    """Decoding order: sentences by true source length, longest first (stable).

    Args:
        src_len: ``(B,)`` long true source lengths.

    Returns:
        ``(B,)`` long original sentence ids in decoding order.
    """
    return src_len.argsort(descending=True, stable=True)  # (B,)


def greedy_search(model: DecoderModel, src: torch.Tensor, src_len: torch.Tensor,
                  cfg: SearchConfig) -> list[list[Hypothesis]]:
    """Batched greedy decoding; finished sentences leave the batch.

    Args:
        model: implements the decoder protocol.
        src: ``(B, S)`` long source ids (PAD-padded).
        src_len: ``(B,)`` long true source lengths.
        cfg: search options (``beam_size``/``n_best`` are ignored).

    Returns:
        Per sentence (input order) a list with one :class:`Hypothesis`.
    """
    check_config(cfg)
    B, S = src.shape
    dev = src.device
    src_len = src_len.to(dev)
    max_len = max_lengths(src_len, cfg)  # (B,)
    min_len = max_len.clamp(max=cfg.min_len)  # (B,)
    T = int(max_len.max()) + 1
    align = cfg.return_alignment
    out_tok = torch.zeros(B, T, dtype=torch.long, device=dev)  # (B, T)
    out_len = torch.zeros(B, dtype=torch.long, device=dev)  # (B,)
    out_lp = torch.full((B,), NEG_INF, device=dev)  # (B,)
    out_attn = torch.zeros(B, T, S, device=dev) if align else None  # (B, T, S)
    with _eval_mode(model):
        sent = _longest_first(src_len)  # (b,) original ids of active rows
        state = model.init_state(model.encode(src[sent], src_len[sent]))
        cum = torch.zeros(B, device=dev)  # (b,)
        hist = torch.zeros(B, T, dtype=torch.long, device=dev)  # (b, T)
        attn_hist = torch.zeros(B, T, S, device=dev) if align else None  # (b, T, S)
        prev = torch.full((B,), BOS_ID, dtype=torch.long, device=dev)  # (b,)
        for t in range(T):
            logp, state = model.step(prev, state)  # (b, V)
            logp = _mask_(logp.float(), t, hist, min_len[sent], max_len[sent],
                          cfg.no_repeat_ngram_size)
            best, tok = logp.max(dim=1)  # (b,), (b,) first maximum
            cum = cum + best
            hist[:, t] = tok
            if align:
                attn_hist[:, t] = state.attn.float()
            ended = (tok == EOS_ID) | (best == NEG_INF)  # (b,)
            if bool(ended.any()):
                ids = sent[ended]
                out_tok[ids] = hist[ended]
                out_len[ids] = t
                out_lp[ids] = cum[ended]
                if align:
                    out_attn[ids] = attn_hist[ended]
                keep = (~ended).nonzero().squeeze(1)  # (b',)
                if keep.numel() == 0:
                    break
                state = model.reorder_state(state, keep)
                sent, cum, hist, tok = sent[keep], cum[keep], hist[keep], tok[keep]
                if align:
                    attn_hist = attn_hist[keep]
            prev = tok
    scores = normalise(out_lp, out_len + 1, cfg)  # (B,)
    results = []
    for i in range(B):
        n = int(out_len[i])
        alignment = out_attn[i, :n + 1, :int(src_len[i])].clone() if align else None
        results.append([Hypothesis(out_tok[i, :n].tolist() if out_lp[i] > NEG_INF else [],
                                   float(scores[i]), float(out_lp[i]), alignment)])
    return results


def beam_search(model: DecoderModel, src: torch.Tensor, src_len: torch.Tensor,
                cfg: SearchConfig) -> list[list[Hypothesis]]:
    """Batched beam search; see the module docstring for the exact semantics.

    Args:
        model: implements the decoder protocol.
        src: ``(B, S)`` long source ids (PAD-padded).
        src_len: ``(B,)`` long true source lengths.
        cfg: search options.

    Returns:
        Per sentence (input order) its ``n_best`` best hypotheses, best first (fewer only if
        fewer than ``n_best`` could be finished).
    """
    check_config(cfg)
    K = cfg.beam_size
    B, S = src.shape
    dev = src.device
    src_len = src_len.to(dev)
    max_len = max_lengths(src_len, cfg)  # (B,)
    min_len = max_len.clamp(max=cfg.min_len)  # (B,)
    T = int(max_len.max()) + 1
    align = cfg.return_alignment
    # results for all B sentences, filled when a sentence is done
    out_score = torch.full((B, K), NEG_INF, dtype=torch.float64, device=dev)  # (B, K)
    out_lp = torch.full((B, K), NEG_INF, device=dev)  # (B, K)
    out_len = torch.zeros(B, K, dtype=torch.long, device=dev)  # (B, K)
    out_tok = torch.zeros(B, K, T, dtype=torch.long, device=dev)  # (B, K, T)
    out_attn = torch.zeros(B, K, T, S, device=dev) if align else None  # (B, K, T, S)
    with _eval_mode(model):
        # until the first reorder the state holds ONE row per sentence: its K slots would all
        # be the same BOS prefix, so the first step runs on B rows and its log-probs are shared
        sent = _longest_first(src_len)  # (b,) original ids of active sentences
        state = model.init_state(model.encode(src[sent], src_len[sent]))
        live = torch.full((B, K), NEG_INF, device=dev)  # (b, K) raw scores; -inf = empty slot
        live[:, 0] = 0.0
        hist = torch.zeros(B * K, T, dtype=torch.long, device=dev)  # (N, T)
        attn_hist = torch.zeros(B * K, T, S, device=dev) if align else None  # (N, T, S)
        fin_score = torch.full((B, K), NEG_INF, dtype=torch.float64, device=dev)  # (b, K) best-first
        fin_lp = torch.full((B, K), NEG_INF, device=dev)  # (b, K)
        fin_len = torch.zeros(B, K, dtype=torch.long, device=dev)  # (b, K)
        fin_tok = torch.zeros(B, K, T, dtype=torch.long, device=dev)  # (b, K, T)
        fin_attn = torch.zeros(B, K, T, S, device=dev) if align else None  # (b, K, T, S)
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
            logp = _mask_(logp.float(), t, hist, min_len[row_sent], max_len[row_sent],
                          cfg.no_repeat_ngram_size)
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
            sent, live = sent[keep], live[keep]
            fin_score, fin_lp, fin_len, fin_tok = (fin_score[keep], fin_lp[keep], fin_len[keep],
                                                   fin_tok[keep])
            if align:
                fin_attn = fin_attn[keep]
    return _collect(out_score, out_lp, out_len, out_tok, out_attn, src_len, cfg.n_best)


def _collect(score: torch.Tensor, lp: torch.Tensor, length: torch.Tensor, tok: torch.Tensor,
             attn: torch.Tensor | None, src_len: torch.Tensor,
             n_best: int) -> list[list[Hypothesis]]:
    """Python hypotheses from the result tensors.

    Args:
        score, lp: ``(B, K)``; length: ``(B, K)`` long token counts; tok: ``(B, K, T)``;
        attn: ``(B, K, T, S)`` or None; src_len: ``(B,)``.
        n_best: hypotheses per sentence.

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
            hyps.append(Hypothesis(tok[i, j, :n].tolist(), score_l[i][j], lp_l[i][j], alignment))
        if not hyps:  # dead end: nothing could be finished
            empty = attn.new_zeros(0, int(src_len[i])) if attn is not None else None
            hyps.append(Hypothesis([], NEG_INF, NEG_INF, empty))
        results.append(hyps)
    return results


def search(model: DecoderModel, src: torch.Tensor, src_len: torch.Tensor,
           cfg: SearchConfig) -> list[list[Hypothesis]]:
    """Greedy search when ``cfg.beam_size == 1``, else beam search.

    Args:
        model: implements the decoder protocol.
        src: ``(B, S)`` long source ids; src_len: ``(B,)`` long true lengths.
        cfg: search options.

    Returns:
        Per sentence (input order) its hypotheses, best first.
    """
    check_config(cfg)
    if cfg.beam_size == 1:
        return greedy_search(model, src, src_len, cfg)
    return beam_search(model, src, src_len, cfg)


__all__ = ["DecoderModel", "Hypothesis", "beam_search", "check_config", "greedy_search",
           "max_lengths", "normalise", "search"]
