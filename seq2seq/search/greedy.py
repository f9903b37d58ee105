"""Batched greedy search over the decoder protocol (semantics: :mod:`seq2seq.search`), and the
row-wise decoding loop it shares with sampling (:mod:`seq2seq.search.sampling`)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from seq2seq.config import SearchConfig
from seq2seq.search.history import History
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

# (masked log-probs (r, V), result row of each live row (r,), step) -> (tokens, their log-probs)
Pick = Callable[[torch.Tensor, torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]]


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
    def first_max(logp: torch.Tensor, rows: torch.Tensor, t: int) -> tuple[torch.Tensor,
                                                                            torch.Tensor]:
        best, tok = logp.max(dim=1)  # (r,), (r,) first maximum
        return tok, best

    return row_search(model, src, src_len, cfg, prefixes, 1, first_max)


def row_search(model: DecoderModel, src: torch.Tensor, src_len: torch.Tensor,
               cfg: SearchConfig, prefixes: list[list[int]] | None, n: int,
               pick: Pick) -> list[list[Hypothesis]]:
    """``n`` independent rows per sentence, each extended by one ``pick``-ed token per step
    until it picks EOS or nothing is left (a token of log-prob ``-inf``); finished rows leave
    the batch.

    Args:
        model, src, src_len, cfg, prefixes: as for :func:`greedy_search`.
        n: rows per sentence.
        pick: chooses each live row's token from its masked log-probs; given the rows' result
            ids (``sentence * n + k``) and the step.

    Returns:
        Per sentence (input order) its ``n`` hypotheses, best first by score (stable).
    """
    prefix = prefix_table(prefixes, src.device)  # (B, P) or None
    lim = limits(src, src_len, cfg, prefix)
    (B, S), dev, T = src.shape, src.device, lim.steps
    R = B * n
    done = History.empty((R,), T, S, dev, cfg.return_alignment, cfg.return_scores)  # results
    out_len = torch.zeros(R, dtype=torch.long, device=dev)  # (R,)
    out_lp = torch.full((R,), NEG_INF, device=dev)  # (R,)
    with eval_mode(model):
        sent = longest_first(lim.src_len)  # (B,) decoding order
        state = model.init_state(model.encode(src[sent], lim.src_len[sent]))
        row = (sent[:, None] * n + torch.arange(n, device=dev)).view(-1)  # (R,) result rows
        if n > 1:
            state = model.reorder_state(state, torch.arange(B, device=dev).repeat_interleave(n))
        cum = torch.zeros(R, device=dev)  # (r,)
        hist = History.empty((R,), T, S, dev, cfg.return_alignment, cfg.return_scores)
        prev = torch.full((R,), BOS_ID, dtype=torch.long, device=dev)  # (r,)
        for t in range(T):
            logp, state = model.step(prev, state)  # (r, V)
            rs = row // n  # (r,) sentence of each row
            logp = mask_(logp.float(), t, hist.tokens, lim.min_len[rs], lim.max_len[rs],
                          cfg.no_repeat_ngram_size, prefix[rs] if prefix is not None else None)
            tok, lp = pick(logp, row, t)  # (r,), (r,)
            cum = cum + lp
            hist.write(t, tokens=tok, attn=state.attn, lps=lp)
            ended = (tok == EOS_ID) | (lp == NEG_INF)  # (r,)
            if bool(ended.any()):
                ids = row[ended]
                done.put(ids, hist.select(ended))
                out_len[ids], out_lp[ids] = t, cum[ended]
                keep = (~ended).nonzero().squeeze(1)  # (r',)
                if keep.numel() == 0:
                    break
                state = model.reorder_state(state, keep)
                row, cum, tok, hist = row[keep], cum[keep], tok[keep], hist.select(keep)
            prev = tok
    scores = normalise(out_lp, out_len + 1, cfg)  # (R,)
    results = []
    for i in range(B):
        hyps = []
        for j in range(i * n, (i + 1) * n):
            tokens, alignment, tlp = done.outputs((j,), int(out_len[j]), int(lim.src_len[i]))
            hyps.append(Hypothesis(tokens if out_lp[j] > NEG_INF else [], float(scores[j]),
                                   float(out_lp[j]), alignment, tlp))
        results.append(sorted(hyps, key=lambda h: -h.score) if n > 1 else hyps)
    return results
