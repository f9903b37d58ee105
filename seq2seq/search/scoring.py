"""What greedy and beam search share: hypotheses, the decoder protocol, length normalisation,
maximum lengths, step masks (min length, forced EOS, n-gram blocking, target prefixes) and the
decoding order.

The exact semantics are in the :mod:`seq2seq.search` package docstring.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from seq2seq.config import SearchConfig
from seq2seq.tokenizer import EOS_ID

NEG_INF = float("-inf")


@dataclass
class Hypothesis:
    """One finished output sequence.

    Attributes:
        tokens: target ids without BOS/EOS.
        score: length-normalised score used for ranking (see module docstring).
        log_prob: raw sum of token log-probs, EOS included.
        alignment: ``(len(tokens) + 1, S_real)`` attention rows (last row = EOS step), or None.
        token_log_probs: ``len(tokens) + 1`` per-token log-probs (EOS last) when
            ``return_scores`` was asked for (always for forced decoding), else None.
        constraints_met: with constraints (:mod:`seq2seq.search.constrained`), per
            constraint whether the tokens contain it; else None.
    """

    tokens: list[int]
    score: float
    log_prob: float
    alignment: torch.Tensor | None = None
    token_log_probs: list[float] | None = None
    constraints_met: list[bool] | None = None


class DecoderModel(Protocol):
    """The decoder protocol search needs (see module docstring)."""

    def encode(self, src: torch.Tensor, src_len: torch.Tensor) -> Any: ...

    def init_state(self, enc: Any) -> Any: ...

    def step(self, prev_tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]: ...

    def reorder_state(self, state: Any, index: torch.Tensor) -> Any: ...


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
def eval_mode(model: Any) -> Iterator[None]:
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


def mask_(logp: torch.Tensor, t: int, hist: torch.Tensor | None, min_len: torch.Tensor,
           max_len: torch.Tensor, ngram: int, prefix: torch.Tensor | None = None) -> torch.Tensor:
    """Apply min length, forced EOS at max length, n-gram blocking and target prefixes.

    Args:
        logp: ``(N, V)`` log-probs of this step (modified in place where possible).
        t: tokens generated so far.
        hist: ``(N, >= t)`` generated tokens; the first ``t`` columns are used (only for
            n-gram blocking: None without it).
        min_len, max_len: ``(N,)`` long per-row limits.
        ngram: no-repeat n-gram size (0 = off).
        prefix: ``(N, P)`` long forced target prefix per row, ``-1`` after its end, or None:
            while ``t`` is inside a row's prefix only its prefix token stays, with its own
            log-prob (the other masks do not apply to it).

    Returns:
        ``(N, V)`` masked log-probs.
    """
    pin = None
    if prefix is not None and t < prefix.shape[1]:
        tok = prefix[:, t]  # (N,)
        on = tok >= 0  # (N,)
        if bool(on.any()):
            pin = (on[:, None], tok.clamp(min=0)[:, None])  # (N, 1) each
            kept = logp.gather(1, pin[1])  # (N, 1) the raw log-probs of the prefix tokens
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
    if pin is not None:
        on, tok = pin
        logp.masked_fill_(on, NEG_INF)
        logp.scatter_(1, tok, torch.where(on, kept, logp.gather(1, tok)))
    return logp


def prefix_table(prefixes: list[list[int]] | None, device: torch.device) -> torch.Tensor | None:
    """``(B, P)`` long table of per-sentence target prefixes, ``-1`` after each one's end (None
    when no sentence has one)."""
    if not prefixes or not any(prefixes):
        return None
    table = torch.full((len(prefixes), max(len(p) for p in prefixes)), -1, dtype=torch.long)
    for i, p in enumerate(prefixes):
        if p:
            table[i, :len(p)] = torch.tensor(p, dtype=torch.long)
    return table.to(device)


def longest_first(src_len: torch.Tensor) -> torch.Tensor:
    """Decoding order: sentences by true source length, longest first (stable).

    Args:
        src_len: ``(B,)`` long true source lengths.

    Returns:
        ``(B,)`` long original sentence ids in decoding order.
    """
    return src_len.argsort(descending=True, stable=True)  # (B,)


@dataclass
class Limits:
    """Per-sentence length limits of one search call (see the package docstring).

    Attributes:
        src_len: ``(B,)`` long true source lengths, on the source's device.
        max_len: ``(B,)`` long maximum output tokens (EOS excluded).
        min_len: ``(B,)`` long minimum output tokens before EOS is allowed.
        steps: number of decoder steps the longest sentence may take (``max(max_len) + 1``).
    """

    src_len: torch.Tensor
    max_len: torch.Tensor
    min_len: torch.Tensor
    steps: int


def limits(src: torch.Tensor, src_len: torch.Tensor, cfg: SearchConfig,
           prefix: torch.Tensor | None = None) -> Limits:
    """The length limits of a batch.

    Args:
        src: ``(B, S)`` long source ids (only its device is used).
        src_len: ``(B,)`` long true source lengths.
        cfg: search options.
        prefix: ``(B, P)`` long target prefixes (``-1`` padded) or None; a prefix longer than
            a sentence's maximum length raises that maximum to the prefix length.
    """
    src_len = src_len.to(src.device)
    max_len = max_lengths(src_len, cfg)  # (B,)
    if prefix is not None:
        max_len = torch.maximum(max_len, (prefix >= 0).sum(1).to(max_len.device))
    return Limits(src_len, max_len, max_len.clamp(max=cfg.min_len), int(max_len.max()) + 1)
