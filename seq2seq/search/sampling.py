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
from seq2seq.search.greedy import row_search
from seq2seq.search.scoring import NEG_INF, DecoderModel, Hypothesis

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
    keys = sentence_keys(src, src_len.to(src.device))  # (B,)
    n = cfg.n_best

    def draw(logp: torch.Tensor, rows: torch.Tensor, t: int) -> tuple[torch.Tensor,
                                                                       torch.Tensor]:
        dead = logp.amax(dim=1) == NEG_INF  # (r,) nothing left to draw
        tok = sample_tokens(logp.masked_fill(dead[:, None], 0.0),
                            uniforms(cfg.seed, keys[rows // n], rows % n, t), cfg)  # (r,)
        return tok, torch.where(dead, NEG_INF, logp.gather(1, tok[:, None]).squeeze(1))

    return row_search(model, src, src_len, cfg, prefixes, n, draw)


__all__ = ["sample_search", "sample_tokens", "sentence_keys", "uniforms"]
