"""Lexically constrained beam search: given target token sequences must appear in the output.

Each sentence has constraints: sequences of target ids (a glossary's target terms, as subword
pieces; :mod:`seq2seq.inference.glossary`). Search follows dynamic beam allocation (Post &
Vilar, 2018): every live hypothesis proposes its ``beam`` most probable next tokens **and** the
next token of every constraint it has not met (the next token of the one it is in the middle
of, or the first token of each unmet one), so hypotheses that place the constraints always
compete; the candidates are grouped in banks by the number of constraint tokens they have met,
and the ``beam`` live slots are shared among the banks (``beam // (C + 1)`` slots each for
``C`` constraint tokens, the rest to the best candidates of any bank by score), so the beam
keeps hypotheses at every stage of meeting the constraints. Exact semantics:

* A hypothesis meets a constraint when its tokens contain it contiguously. Progress in a
  constraint is kept while the hypothesis continues it and abandoned (the constraint unmet
  again, the tokens kept) when it takes another token; a token that starts an unmet constraint
  starts it (the lowest-numbered one when several start with it).
* EOS is allowed only once every constraint is met; every such EOS extension is offered to
  the sentence's finished set (the ``beam`` best by normalised score; ties keep the earlier).
* **Deadline.** A candidate that could not meet its remaining constraint tokens within the
  maximum length is dropped, so at least one hypothesis places every constraint that fits.
  Constraints that do not fit the maximum length at all (their tokens together are more than
  ``max_len``) are dropped at the start, last ones first, and reported unmet.
* **Width.** A sentence's beam is widened to ``C + 1`` (at most :data:`MAX_WIDTH`) when it
  is narrower, so that every bank keeps a hypothesis: with ``beam_size=1`` one hypothesis
  would take its most probable token unless the deadline forced a constraint token, which puts
  the terms at the end and, with EOS masked meanwhile, makes it ramble. ``n_best`` stays what
  was asked for; sentences without constraints keep the requested beam.
* Stopping, length normalisation, n-gram blocking, minimum length, target prefixes and ties as
  in :mod:`seq2seq.search` (the finished set is full and the best live hypothesis cannot beat
  its worst). If nothing could be finished, the best live hypothesis (most constraint tokens,
  then score) is returned.

The model is stepped once per time step for all live hypotheses of all sentences, as in
:mod:`seq2seq.search.beam`; the per-sentence bookkeeping is Python, over the few candidates
of each hypothesis. Every decision is per sentence, so results are batch-invariant. Sentences
without constraints never come here: :func:`seq2seq.search.search` sends them through the
unconstrained search, unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    prefix_table,
)
from seq2seq.tokenizer import BOS_ID, EOS_ID

Constraints = list[tuple[int, ...]]  # one sentence's constraint token sequences
MAX_WIDTH = 8  # the widest beam a sentence's constraints widen it to


@dataclass(frozen=True)
class _Hyp:
    score: float  # raw cumulative log-prob
    tokens: tuple[int, ...]
    lps: tuple[float, ...]  # per-token log-probs
    steps: tuple[tuple[int, int], ...]  # (step, row) of each token's attention row
    met: int = 0  # bitmask of met constraints
    prog: tuple[int, int] | None = None  # (constraint, tokens of it matched) in progress
    count: int = 0  # constraint tokens met (done_tokens)


def advance(cons: Constraints, met: int, prog: tuple[int, int] | None,
            tok: int) -> tuple[int, tuple[int, int] | None]:
    """The constraint state after ``tok`` (see the module docstring)."""
    if prog is not None:
        k, j = prog
        if cons[k][j] == tok:
            return (met | 1 << k, None) if j + 1 == len(cons[k]) else (met, (k, j + 1))
    for k, c in enumerate(cons):
        if not met >> k & 1 and c[0] == tok:
            return (met | 1 << k, None) if len(c) == 1 else (met, (k, 1))
    return met, None


class _Sentence:
    """One sentence's constraints, with what the search loop asks of them often."""

    def __init__(self, cons: Constraints) -> None:
        self.cons = cons
        self.total = sum(len(c) for c in cons)
        self.firsts = {c[0] for c in cons}

    def step(self, h: _Hyp, tok: int) -> tuple[int, tuple[int, int] | None, int]:
        """``(met, prog, count)`` after ``tok``; a token that starts and continues nothing
        keeps the state (the common case, without a scan)."""
        if h.prog is None and tok not in self.firsts:
            return h.met, None, h.count
        met, prog = advance(self.cons, h.met, h.prog, tok)
        return met, prog, done_tokens(self.cons, met, prog)

    def wanted(self, h: _Hyp) -> list[int]:
        """The constraint tokens ``h`` may take next."""
        if h.prog is not None:
            return [self.cons[h.prog[0]][h.prog[1]]]
        return [c[0] for k, c in enumerate(self.cons) if not h.met >> k & 1]


def done_tokens(cons: Constraints, met: int, prog: tuple[int, int] | None) -> int:
    """Constraint tokens met (whole constraints plus the progress in one)."""
    return sum(len(c) for k, c in enumerate(cons) if met >> k & 1) + (prog[1] if prog else 0)


def fitting(cons: Constraints, max_len: int) -> tuple[Constraints, list[int]]:
    """The constraints that fit ``max_len`` tokens together (dropping the last first) and the
    indices of the dropped ones."""
    kept = list(range(len(cons)))
    while kept and sum(len(cons[k]) for k in kept) > max_len:
        kept.pop()
    return [cons[k] for k in kept], [k for k in range(len(cons)) if k not in kept]


def _norm(score: float, length: int, cfg: SearchConfig) -> float:
    """:func:`~seq2seq.search.scoring.normalise` of one score, in Python floats."""
    if cfg.length_penalty == "none":
        return score
    if cfg.length_penalty == "average":
        return score / length
    return score / ((5.0 + length) / 6.0) ** cfg.alpha


def _allocate(cands: list[tuple], banks: int, K: int) -> list[tuple]:
    """``K`` of ``cands`` (``(score, parent, token, lp, met, prog, count)``, best first):
    ``K // banks`` per bank by score, the rest the best of any bank."""
    per_bank = K // banks
    chosen: list[tuple] = []
    taken = set()
    if per_bank:
        counts: dict[int, int] = {}
        for i, c in enumerate(cands):
            if counts.get(c[6], 0) < per_bank:
                counts[c[6]] = counts.get(c[6], 0) + 1
                chosen.append(c)
                taken.add(i)
    for i, c in enumerate(cands):
        if len(chosen) >= K:
            break
        if i not in taken:
            chosen.append(c)
    chosen.sort(key=lambda c: (-c[0], c[1], c[2]))
    return chosen[:K]


def constrained_search(model: DecoderModel, src: torch.Tensor, src_len: torch.Tensor,
                       cfg: SearchConfig, constraints: list[list[list[int]]],
                       prefixes: list[list[int]] | None = None) -> list[list[Hypothesis]]:
    """Beam search in which every sentence's constraints appear in its output (module
    docstring).

    Args:
        model, src, src_len, cfg, prefixes: as for :func:`~seq2seq.search.beam.beam_search`.
        constraints: per sentence its constraints, each a non-empty list of target ids.

    Returns:
        Per sentence (input order) up to ``n_best`` hypotheses, best first, each with
        ``constraints_met``: per constraint (in the given order) whether it is in the output.
    """
    K = cfg.beam_size
    dev = src.device
    prefix = prefix_table(prefixes, dev)  # (B, P) or None
    lim = limits(src, src_len, cfg, prefix)
    B, T = src.shape[0], lim.steps
    max_len = lim.max_len.tolist()
    given = [[tuple(c) for c in sent] for sent in constraints]
    cons, dropped = zip(*(fitting(c, m) for c, m in zip(given, max_len, strict=True)),
                        strict=True) if B else ((), ())
    sents = [_Sentence(c) for c in cons]
    width = [max(K, min(x.total + 1, MAX_WIDTH)) for x in sents]
    attn_steps: list[torch.Tensor] = []
    finished: list[list[tuple[float, int, _Hyp]]] = [[] for _ in range(B)]
    results: list[list[Hypothesis] | None] = [None] * B
    with eval_mode(model):
        sent = longest_first(lim.src_len).tolist()  # active sentences, decoding order
        state = model.init_state(model.encode(src[sent], lim.src_len[sent]))
        live = {i: [(_Hyp(0.0, (), (), ()), r)] for r, i in enumerate(sent)}  # hyp, its row
        prev = torch.full((B,), BOS_ID, dtype=torch.long, device=dev)
        for t in range(T):
            logp, state = model.step(prev, state)  # (N, V)
            if cfg.return_alignment:
                attn_steps.append(state.attn.float())  # (N, S)
            rows = [(i, h) for i in sent for h, _ in live[i]]  # row order of the state
            row_sent = torch.tensor([i for i, _ in rows], dtype=torch.long, device=dev)
            hist = (torch.tensor([h.tokens for _, h in rows], dtype=torch.long,
                                 device=dev).view(len(rows), t)  # (N, t), for n-gram blocking
                    if cfg.no_repeat_ngram_size else None)
            logp = mask_(logp.float(), t, hist, lim.min_len[row_sent], lim.max_len[row_sent],
                          cfg.no_repeat_ngram_size,
                          prefix[row_sent] if prefix is not None else None)  # (N, V)
            short = [r for r, (i, h) in enumerate(rows) if h.count < sents[i].total]
            if short:
                logp[short, EOS_ID] = NEG_INF  # no end before every constraint is met
            cands = _candidates(logp, rows, sents, min(max(width), logp.shape[1]))
            chosen: list[tuple[int, _Hyp]] = []
            for i in list(sent):
                mine = sorted(cands.get(i, []), key=lambda c: (-c[0], c[1], c[2]))
                k = width[i]
                nxt = _step_sentence(t, mine, live[i], sents[i].total, max_len[i], k,
                                     finished[i], cfg)
                best_live = nxt[0][0].score if nxt else NEG_INF
                full = len(finished[i]) >= k
                beaten = full and _norm(best_live, t + 1, cfg) <= finished[i][k - 1][0]
                if not nxt or beaten or t == T - 1:
                    results[i] = _collect(finished[i], nxt, cons[i], len(given[i]), dropped[i],
                                          attn_steps, int(lim.src_len[i]), cfg)
                    sent.remove(i)
                    continue
                live[i] = nxt
                chosen += nxt
            if not sent:
                break
            parents = torch.tensor([r for _, r in chosen], dtype=torch.long, device=dev)
            state = model.reorder_state(state, parents)
            prev = torch.tensor([h.tokens[-1] for h, _ in chosen], dtype=torch.long, device=dev)
            # the chosen hypotheses' rows in the next step, per sentence, in order
            r = 0
            for i in sent:
                live[i] = [(h, (r := r + 1) - 1) for h, _ in live[i]]
    return results  # type: ignore[return-value]


def _candidates(logp: torch.Tensor, rows: list[tuple[int, _Hyp]], sents: list[_Sentence],
                k: int) -> dict[int, list[tuple]]:
    """Per sentence its candidates ``(score, parent row, token, lp, met, prog, count)``: each
    row's ``k`` best tokens and its constraint tokens (finite log-probs only)."""
    top_v, top_i = (x.tolist() for x in logp.topk(k, dim=1))  # (N, k) each
    want = [(r, y) for r, (i, h) in enumerate(rows) for y in sents[i].wanted(h)]
    extra = logp[[r for r, _ in want], [y for _, y in want]].tolist() if want else []
    for (r, y), v in zip(want, extra, strict=True):
        if y not in top_i[r]:
            top_i[r].append(y)
            top_v[r].append(v)
    out: dict[int, list[tuple]] = {}
    for r, (i, h) in enumerate(rows):
        mine = out.setdefault(i, [])
        sentence, score, plain = sents[i], h.score, (h.met, None, h.count)
        for y, v in zip(top_i[r], top_v[r], strict=True):
            if v == NEG_INF:
                continue
            if y == EOS_ID:
                state = (h.met, h.prog, h.count)
            elif h.prog is None and y not in sentence.firsts:
                state = plain  # the common case: nothing starts or continues
            else:
                state = sentence.step(h, y)
            mine.append((score + v, r, y, v, *state))
    return out


def _step_sentence(t: int, cands: list[tuple], live: list[tuple[_Hyp, int]], total: int,
                   max_len: int, K: int, finished: list[tuple[float, int, _Hyp]],
                   cfg: SearchConfig) -> list[tuple[_Hyp, int]]:
    """One step of one sentence: EOS candidates into ``finished``, the next live beam."""
    parent = {r: h for h, r in live}
    steps_left = max_len - (t + 1)  # tokens still possible after this one (EOS excluded)
    keep = []
    for c in cands:
        score, r, y, v, met, prog, count = c
        h = parent[r]
        if y == EOS_ID:
            if count == total:
                ended = _Hyp(score, h.tokens, h.lps + (v,), h.steps + ((t, r),), met, prog,
                             count)
                norm = _norm(score, t + 1, cfg)
                finished.append((norm, len(finished), ended))
                finished.sort(key=lambda f: (-f[0], f[1]))
                del finished[K:]
            continue
        if total - count <= steps_left:
            keep.append(c)
    chosen = _allocate(keep, total + 1, K)
    return [(_Hyp(s, parent[r].tokens + (y,), parent[r].lps + (v,),
                  parent[r].steps + ((t, r),), met, prog, count), r)
            for s, r, y, v, met, prog, count in chosen]


def _collect(finished: list[tuple[float, int, _Hyp]], live: list[tuple[_Hyp, int]],
             cons: Constraints, n_given: int, dropped: list[int], attn: list[torch.Tensor],
             src_len: int, cfg: SearchConfig) -> list[Hypothesis]:
    """The sentence's hypotheses: its finished ones, best first (or its best live one)."""
    kept = [k for k in range(n_given) if k not in dropped]  # given index of each kept one
    if finished:
        picked = [(norm, h) for norm, _, h in finished[:cfg.n_best]]
    else:  # nothing could end: the live hypothesis that met the most
        best = max((h for h, _ in live), default=_Hyp(NEG_INF, (), (), ()),
                   key=lambda h: (h.count, h.score))
        picked = [(_norm(best.score, len(best.tokens) + 1, cfg), best)]
    out = []
    for norm, h in picked:
        tokens = [y for y in h.tokens]
        met = [False] * n_given
        for j, k in enumerate(kept):
            met[k] = bool(h.met >> j & 1)
        alignment = None
        if cfg.return_alignment and attn:
            rows = [attn[t][r, :src_len] for t, r in h.steps]
            alignment = torch.stack(rows) if rows else attn[0].new_zeros(0, src_len)
        out.append(Hypothesis(tokens, norm, float(sum(h.lps)), alignment,
                              list(h.lps) if cfg.return_scores else None, met))
    return out


__all__ = ["advance", "constrained_search", "done_tokens", "fitting"]
