"""Batched beam search over the decoder protocol (semantics: :mod:`seq2seq.search`)."""

from __future__ import annotations

from dataclasses import dataclass

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
from seq2seq.search.topk import beam_topk, first_max_is
from seq2seq.tokenizer import BOS_ID, EOS_ID


@dataclass
class Finished:
    """Up to ``K`` finished hypotheses per sentence, best first by ``score``.

    Attributes:
        score: ``(b, K)`` float64 length-normalised scores (``-inf``: an empty slot).
        lp: ``(b, K)`` raw summed log-probs.
        length: ``(b, K)`` long token counts (EOS excluded).
        hist: their tokens (and attention rows / token log-probs), ``(b, K, T, ...)``.
        tag: ``(b, K)`` long, a value the caller attaches to each hypothesis (the constraints
            it met, :mod:`seq2seq.search.constrained`), or None.
    """

    score: torch.Tensor
    lp: torch.Tensor
    length: torch.Tensor
    hist: History
    tag: torch.Tensor | None = None

    @classmethod
    def empty(cls, B: int, K: int, T: int, S: int, dev: torch.device,
              cfg: SearchConfig, tagged: bool = False) -> Finished:
        return cls(torch.full((B, K), NEG_INF, dtype=torch.float64, device=dev),  # (B, K)
                   torch.full((B, K), NEG_INF, device=dev),  # (B, K)
                   torch.zeros(B, K, dtype=torch.long, device=dev),  # (B, K)
                   History.empty((B, K), T, S, dev, cfg.return_alignment, cfg.return_scores),
                   torch.zeros(B, K, dtype=torch.long, device=dev) if tagged else None)

    def select(self, rows: torch.Tensor) -> Finished:
        """The sentences ``rows`` (mask or ids)."""
        return Finished(self.score[rows], self.lp[rows], self.length[rows],
                        self.hist.select(rows), None if self.tag is None else self.tag[rows])

    def put(self, ids: torch.Tensor, other: Finished) -> None:
        """Sentences ``ids`` become ``other``'s."""
        self.score[ids], self.lp[ids], self.length[ids] = other.score, other.lp, other.length
        self.hist.put(ids, other.hist)
        if self.tag is not None:
            self.tag[ids] = other.tag

    def offer(self, new: torch.Tensor, lp: torch.Tensor, t: int, hist: History,
              cfg: SearchConfig, tag: torch.Tensor | None = None) -> Finished:
        """Add the hypotheses ``new`` ``(b, K')`` (log-probs ``lp``, ``t`` tokens, histories
        ``hist`` ``(b, K', ...)``, tags ``tag`` ``(b, K')`` when this set keeps tags), keeping
        the ``K`` best per sentence; ties keep the earlier finished, then the lower slot."""
        new_score = torch.where(new, normalise(lp, t + 1, cfg), NEG_INF)  # (b, K')
        score, order = torch.cat([self.score, new_score], 1).sort(dim=1, descending=True,
                                                                  stable=True)  # (b, K+K')
        K = self.score.shape[1]
        order = order[:, :K]  # (b, K)
        both_lp = torch.cat([self.lp, torch.where(new, lp, NEG_INF)], 1)  # (b, K+K')
        both_len = torch.cat([self.length, torch.full_like(new, t, dtype=torch.long)],
                             1)  # (b, K + K')
        both_tag = None if self.tag is None else torch.cat([self.tag, tag], 1)  # (b, K+K')
        return Finished(score[:, :K], both_lp.gather(1, order), both_len.gather(1, order),
                        self.hist.merge(hist, order),
                        None if both_tag is None else both_tag.gather(1, order))


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
    (B, S), dev, T = src.shape, src.device, lim.steps
    out = Finished.empty(B, K, T, S, dev, cfg)  # every sentence's result, set when it is done
    with eval_mode(model):
        # until the first reorder the state holds ONE row per sentence: its K slots would all
        # be the same BOS prefix, so the first step runs on B rows and its log-probs are shared
        sent = longest_first(lim.src_len)  # (b,) original ids of active sentences
        state = model.init_state(model.encode(src[sent], lim.src_len[sent]))
        live = torch.full((B, K), NEG_INF, device=dev)  # (b, K) raw scores; -inf = empty slot
        live[:, 0] = 0.0
        hist = History.empty((B * K,), T, S, dev, cfg.return_alignment, cfg.return_scores)
        fin = Finished.empty(B, K, T, S, dev, cfg)  # (b, K) per active sentence
        prev = torch.full((B,), BOS_ID, dtype=torch.long, device=dev)  # (B,) first step
        for t in range(T):
            b = sent.numel()
            logp, state = model.step(prev, state)  # (N, V); (B, V) at t = 0
            step_attn = state.attn
            if t == 0:
                logp = logp.repeat_interleave(K, dim=0)  # (N, V) same row for every slot
                if hist.attn is not None:
                    step_attn = step_attn.repeat_interleave(K, dim=0)  # (N, S)
            V = logp.shape[1]
            row_sent = sent.repeat_interleave(K)  # (N,)
            logp = mask_(logp.float(), t, hist.tokens, lim.min_len[row_sent],
                          lim.max_len[row_sent], cfg.no_repeat_ngram_size,
                          prefix[row_sent] if prefix is not None else None)
            hist.write(t, attn=step_attn)
            # best 2K of the b x (K * V) extensions live[slot] + logp[slot, token]
            vals, idx, row_max = beam_topk(logp, live, min(2 * K, K * V))  # (b, 2K) x2, (N,)
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
                fin = fin.offer(new, eos_lp, t, hist.ending(t, logp[:, EOS_ID]).reshape(b, K),
                                cfg)
            # next live beam: the first K non-EOS extensions
            key = is_eos.long() * idx.shape[1] + torch.arange(idx.shape[1], device=dev)  # (b, 2K)
            pick = key.argsort(dim=1)[:, :K]  # (b, K)
            live = torch.where(is_eos.gather(1, pick), NEG_INF, vals.gather(1, pick))  # (b, K)
            live_slot, live_tok = slot.gather(1, pick), tok.gather(1, pick)  # (b, K)
            # stopping
            best_live = live.max(dim=1).values  # (b,)
            full = fin.score[:, -1] > NEG_INF  # (b,) K finished
            beaten = normalise(best_live, t + 1, cfg) <= fin.score[:, -1]
            done = (best_live == NEG_INF) | (full & beaten)  # (b,)
            if bool(done.any()):
                out.put(sent[done], fin.select(done))
            keep = (~done).nonzero().squeeze(1)  # (b',)
            if keep.numel() == 0:
                break
            rows = (base + live_slot)[keep].view(-1)  # (b'*K,)
            state = model.reorder_state(state, rows // K if t == 0 else rows)
            prev = live_tok[keep].view(-1)  # (b'*K,)
            hist = hist.select(rows)
            hist.write(t, tokens=prev, lps=logp[rows, prev])
            sent, live, fin = sent[keep], live[keep], fin.select(keep)
    return _collect(out, lim.src_len, cfg.n_best)


def _collect(out: Finished, src_len: torch.Tensor, n_best: int) -> list[list[Hypothesis]]:
    """Python hypotheses from the result tensors (``src_len`` ``(B,)``): per sentence up to
    ``n_best``, best first."""
    score_l, lp_l, len_l = out.score.tolist(), out.lp.tolist(), out.length.tolist()
    results = []
    for i in range(len(score_l)):
        hyps = []
        for j in range(n_best):
            if lp_l[i][j] == NEG_INF:
                break
            tokens, alignment, tok_lp = out.hist.outputs((i, j), len_l[i][j], int(src_len[i]))
            hyps.append(Hypothesis(tokens, score_l[i][j], lp_l[i][j], alignment, tok_lp))
        if not hyps:  # dead end: nothing could be finished
            attn = out.hist.attn
            empty = attn.new_zeros(0, int(src_len[i])) if attn is not None else None
            hyps.append(Hypothesis([], NEG_INF, NEG_INF, empty))
        results.append(hyps)
    return results
