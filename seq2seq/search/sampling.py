"""Batched, seeded sampling over the decoder protocol (e.g. for back-translation).

Every sentence gets ``n`` samples (``cfg.n_best``); all ``B * n`` rows advance in one ``step``
per time step and leave the batch when they draw EOS. Each step's distribution is the model's,
masked as in search (minimum length, forced EOS at the maximum length, n-gram blocking, target
prefixes), then

* **tempered**: ``softmax(log_p / temperature)``;
* **truncated**: to the ``top_k`` most probable tokens (``top_k > 0``), and/or to the smallest
  set of most probable tokens whose probability reaches ``top_p`` (``top_p < 1``; the token that
  crosses ``top_p`` is kept);
* **sampled by inverse CDF** with one uniform number per (sentence, sample, step).

The uniform numbers come from a counter-based hash of ``(cfg.seed, the sentence's source ids,
sample index, step)``, not from a stateful generator, so a sentence's samples depend on the seed
and on the sentence only: the same seed gives the same output, whatever else is in the batch and
however it is padded. ``log_prob``/``score`` of a sample are the *model's* (untempered) log-probs,
comparable with beam search; the ``n`` samples come back best-first by score.
"""

from __future__ import annotations

import zlib

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

M32 = 0xFFFFFFFF


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """``x * c mod 2**32`` for int64 ``x`` in ``[0, 2**32)`` without int64 overflow."""
    lo, hi = c & 0xFFFF, c >> 16
    return (x * lo + ((x * hi) & 0xFFFF) * 65536) & M32


def _mix(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash (``lowbias32``) of int64 ``x`` in ``[0, 2**32)``."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def uniforms(seed: int, keys: torch.Tensor, sample: torch.Tensor, t: int) -> torch.Tensor:
    """One uniform number in ``[0, 1)`` per row from ``(seed, key, sample, step)``.

    Args:
        seed: the search seed.
        keys: ``(N,)`` int64 per-row sentence keys in ``[0, 2**32)``.
        sample: ``(N,)`` int64 sample index of each row.
        t: the step.

    Returns:
        ``(N,)`` float64 uniforms.
    """
    h = _mix(torch.full_like(keys, (seed * 0x9E3779B9 + t) & M32))
    h = _mix(h ^ keys)
    h = _mix(h ^ sample)
    return h.double() / 2.0**32


def sentence_keys(src: torch.Tensor, src_len: torch.Tensor) -> torch.Tensor:
    """``(B,)`` int64 key of each sentence from its source ids (CRC-32 of the true tokens)."""
    rows = src.tolist()
    keys = [zlib.crc32(torch.tensor(r[:int(n)], dtype=torch.int64).numpy().tobytes())
            for r, n in zip(rows, src_len.tolist(), strict=True)]
    return torch.tensor(keys, dtype=torch.long, device=src.device)


def sample_tokens(logp: torch.Tensor, u: torch.Tensor, cfg: SearchConfig) -> torch.Tensor:
    """Draw one token per row from the tempered, truncated distribution of ``logp``.

    Args:
        logp: ``(N, V)`` masked log-probs (rows with a finite entry).
        u: ``(N,)`` uniforms in ``[0, 1)``.
        cfg: ``temperature``, ``top_k``, ``top_p``.

    Returns:
        ``(N,)`` long tokens.
    """
    z = logp.double() / cfg.temperature  # (N, V)
    if cfg.top_p < 1.0 or cfg.top_k > 0:
        k = cfg.top_k if 0 < cfg.top_k < z.shape[1] else z.shape[1]
        z, order = z.topk(k, dim=1, sorted=True)  # (N, k) most probable first, ties by index
    else:
        order = None
    p = torch.softmax(z, dim=1)  # (N, k)
    if cfg.top_p < 1.0:
        before = p.cumsum(1) - p  # (N, k) mass of the more probable tokens
        p = p.masked_fill(before >= cfg.top_p, 0.0)  # keeps the token that crosses top_p
    cdf = p.cumsum(1)  # (N, k)
    pick = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None], right=True).squeeze(1)
    pick = pick.clamp(max=cdf.shape[1] - 1)  # u * total rounding up to the last edge
    return pick if order is None else order.gather(1, pick[:, None]).squeeze(1)


def sample_search(model: DecoderModel, src: torch.Tensor, src_len: torch.Tensor,
                  cfg: SearchConfig,
                  prefixes: list[list[int]] | None = None) -> list[list[Hypothesis]]:
    """Draw ``cfg.n_best`` samples per sentence (see the module docstring).

    Args:
        model: implements the decoder protocol.
        src: ``(B, S)`` long PAD-padded source ids; src_len: ``(B,)`` long true lengths.
        cfg: ``n_best`` (samples), ``temperature``, ``top_k``, ``top_p``, ``seed`` and the
            length/masking options of search.
        prefixes: per sentence target ids the samples must start with (or None).

    Returns:
        Per sentence (input order) its samples, best first by score.
    """
    n = cfg.n_best
    prefix = prefix_table(prefixes, src.device)  # (B, P) or None
    lim = limits(src, src_len, cfg, prefix)
    (B, S), dev, T, align = src.shape, src.device, lim.steps, cfg.return_alignment
    src_len, max_len, min_len = lim.src_len, lim.max_len, lim.min_len  # (B,) each
    keys = sentence_keys(src, src_len)  # (B,)
    R = B * n
    out_tok = torch.zeros(R, T, dtype=torch.long, device=dev)  # (R, T) rows sentence-major
    out_len = torch.zeros(R, dtype=torch.long, device=dev)  # (R,)
    out_lp = torch.full((R,), NEG_INF, device=dev)  # (R,)
    out_tlp = torch.zeros(R, T, device=dev)  # (R, T)
    out_attn = torch.zeros(R, T, S, device=dev) if align else None  # (R, T, S)
    with eval_mode(model):
        sent = longest_first(src_len)  # (B,) decoding order
        state = model.init_state(model.encode(src[sent], src_len[sent]))
        row = (sent[:, None] * n + torch.arange(n, device=dev)).view(-1)  # (R,) result rows
        state = model.reorder_state(state, torch.arange(B, device=dev).repeat_interleave(n))
        cum = torch.zeros(R, device=dev)  # (r,)
        hist = torch.zeros(R, T, dtype=torch.long, device=dev)  # (r, T)
        lp_hist = torch.zeros(R, T, device=dev)  # (r, T)
        attn_hist = torch.zeros(R, T, S, device=dev) if align else None  # (r, T, S)
        prev = torch.full((R,), BOS_ID, dtype=torch.long, device=dev)  # (r,)
        for t in range(T):
            logp, state = model.step(prev, state)  # (r, V)
            rs = row // n  # (r,) sentence of each row
            logp = mask_(logp.float(), t, hist, min_len[rs], max_len[rs],
                          cfg.no_repeat_ngram_size, prefix[rs] if prefix is not None else None)
            dead = logp.amax(dim=1) == NEG_INF  # (r,) nothing left to draw
            tok = sample_tokens(logp.masked_fill(dead[:, None], 0.0),
                                uniforms(cfg.seed, keys[rs], row % n, t), cfg)  # (r,)
            lp = torch.where(dead, NEG_INF, logp.gather(1, tok[:, None]).squeeze(1))  # (r,)
            cum = cum + lp
            hist[:, t], lp_hist[:, t] = tok, lp
            if align:
                attn_hist[:, t] = state.attn.float()
            ended = (tok == EOS_ID) | dead  # (r,)
            if bool(ended.any()):
                ids = row[ended]
                out_tok[ids], out_len[ids], out_lp[ids] = hist[ended], t, cum[ended]
                out_tlp[ids] = lp_hist[ended]
                if align:
                    out_attn[ids] = attn_hist[ended]
                keep = (~ended).nonzero().squeeze(1)  # (r',)
                if keep.numel() == 0:
                    break
                state = model.reorder_state(state, keep)
                row, cum, hist, lp_hist, tok = row[keep], cum[keep], hist[keep], lp_hist[keep], \
                    tok[keep]
                if align:
                    attn_hist = attn_hist[keep]
            prev = tok
    scores = normalise(out_lp, out_len + 1, cfg)  # (R,)
    results = []
    for i in range(B):
        hyps = []
        for j in range(i * n, (i + 1) * n):
            m = int(out_len[j])
            ok = bool(out_lp[j] > NEG_INF)
            alignment = out_attn[j, :m + 1, :int(src_len[i])].clone() if align else None
            hyps.append(Hypothesis(out_tok[j, :m].tolist() if ok else [], float(scores[j]),
                                   float(out_lp[j]), alignment,
                                   out_tlp[j, :m + 1].tolist() if cfg.return_scores else None))
        results.append(sorted(hyps, key=lambda h: -h.score))
    return results


__all__ = ["sample_search", "sample_tokens", "sentence_keys", "uniforms"]
