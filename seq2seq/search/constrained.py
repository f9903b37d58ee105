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

The step is vectorised as in :mod:`seq2seq.search.beam` (the idea of Hu et al., 2019): the
model is stepped once per time step for all live hypotheses of all sentences; every sentence
holds ``G`` state rows (``G`` the widest beam among the active sentences; a narrower beam
leaves slots empty, so the rows come in equal runs and the encoder memory is never copied); the constraint
state of each hypothesis is three tensors (:class:`ConstraintState`), and a
:class:`ConstraintTable` advances all candidates at once; the bank allocation is sorts and
ranks per sentence. Every decision is per sentence, so results are batch-invariant. Sentences
without constraints never come here: :func:`seq2seq.search.search` sends them through the
unconstrained search, unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from seq2seq.config import SearchConfig
from seq2seq.search.beam import Finished
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
from seq2seq.search.topk import topk_first
from seq2seq.tokenizer import BOS_ID, EOS_ID

Constraints = list[tuple[int, ...]]  # one sentence's constraint token sequences
MAX_WIDTH = 8  # the widest beam a sentence's constraints widen it to


@dataclass
class ConstraintState:
    """The constraint state of hypotheses, all fields of one shape ``(*R)``.

    Attributes:
        met: long bitmask of the met constraints.
        prog: long constraint in progress, ``-1`` for none.
        pos: long tokens of it matched (0 without one).
        count: long constraint tokens met: of the met constraints, plus ``pos``.
    """

    met: torch.Tensor
    prog: torch.Tensor
    pos: torch.Tensor
    count: torch.Tensor

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> ConstraintState:
        """``fn`` applied to every field (select, reshape)."""
        return ConstraintState(fn(self.met), fn(self.prog), fn(self.pos), fn(self.count))

    def take(self, index: torch.Tensor, *shape: int) -> ConstraintState:
        """The flat elements ``index`` of every field, viewed as ``shape``."""
        return self.map(lambda x: x.reshape(-1)[index].view(*shape))


@dataclass
class ConstraintTable:
    """The constraints of ``B`` sentences as tensors.

    Attributes:
        tokens: ``(B, C, L)`` long token ``j`` of constraint ``c`` (``-1`` past its end and
            for absent constraints).
        length: ``(B, C)`` long constraint lengths (0: absent).
        total: ``(B,)`` long constraint tokens per sentence.
    """

    tokens: torch.Tensor
    length: torch.Tensor
    total: torch.Tensor

    @classmethod
    def of(cls, cons: list[Constraints], device: torch.device) -> ConstraintTable:
        """The table of ``cons`` (per sentence its constraints)."""
        C = max((len(c) for c in cons), default=0) or 1
        L = max((len(x) for c in cons for x in c), default=0) or 1
        tokens = torch.full((len(cons), C, L), -1, dtype=torch.long)  # (B, C, L)
        length = torch.zeros(len(cons), C, dtype=torch.long)  # (B, C)
        for i, c in enumerate(cons):
            for k, x in enumerate(c):
                tokens[i, k, :len(x)] = torch.tensor(x, dtype=torch.long)
                length[i, k] = len(x)
        return cls(tokens.to(device), length.to(device), length.sum(1).to(device))

    def start(self, rows: tuple[int, ...], device: torch.device) -> ConstraintState:
        """Nothing met, for ``rows`` hypotheses."""
        def zero() -> torch.Tensor:
            return torch.zeros(rows, dtype=torch.long, device=device)
        return ConstraintState(zero(), zero() - 1, zero(), zero())

    def _next(self, sent: torch.Tensor, st: ConstraintState) -> tuple[torch.Tensor, ...]:
        """Per hypothesis ``(N,)``: its constraints ``(N, C, L)``, their lengths ``(N, C)``,
        the next token of the one in progress ``(N,)`` (any value without one) and which are
        unmet ``(N, C)``."""
        tokens, length = self.tokens[sent], self.length[sent]  # (N, C, L), (N, C)
        nxt = tokens[torch.arange(sent.numel(), device=sent.device), st.prog.clamp(min=0),
                     st.pos.clamp(max=tokens.shape[2] - 1)]  # (N,)
        bits = torch.arange(length.shape[1], device=sent.device)  # (C,)
        unmet = ((st.met[:, None] >> bits & 1) == 0) & (length > 0)  # (N, C)
        return tokens, length, nxt, unmet

    def wanted(self, sent: torch.Tensor, st: ConstraintState) -> torch.Tensor:
        """``(N, C)`` the constraint tokens each of ``N`` hypotheses (of sentences ``sent``
        ``(N,)``, in states ``st`` ``(N,)``) may take next: the next token of the constraint in
        progress, else the first token of each unmet one; ``-1`` for none."""
        tokens, _, nxt, unmet = self._next(sent, st)
        firsts = torch.where(unmet, tokens[:, :, 0], -1)  # (N, C)
        cont = torch.full_like(firsts, -1)
        cont[:, 0] = nxt
        return torch.where((st.prog >= 0)[:, None], cont, firsts)

    def advance(self, sent: torch.Tensor, st: ConstraintState,
                tok: torch.Tensor) -> ConstraintState:
        """The states after the tokens ``tok`` ``(N, M)`` (``M`` candidates for each of ``N``
        hypotheses of sentences ``sent`` ``(N,)``, in states ``st`` ``(N,)``): a token that
        continues the constraint in progress continues it (and meets it with its last token);
        else a token that starts unmet constraints starts the lowest-numbered one; else the
        progress is abandoned (the tokens stay, the constraint is unmet again)."""
        tokens, length, nxt, unmet = self._next(sent, st)
        prog = st.prog.clamp(min=0)  # (N,)
        cont = (st.prog >= 0)[:, None] & (tok == nxt[:, None])  # (N, M)
        done = cont & ((st.pos + 1)[:, None] == length.gather(1, prog[:, None]))  # completes it
        starts = (tok[:, :, None] == tokens[:, None, :, 0]) & unmet[:, None, :]  # (N, M, C)
        first = starts.long().argmax(2)  # (N, M) the lowest-numbered one it starts
        started = ~cont & starts.any(2)  # (N, M)
        first_len = length.gather(1, first)  # (N, M)
        met = st.met[:, None].expand_as(tok)  # (N, M)
        met = torch.where(done, met | (1 << prog)[:, None], met)
        met = torch.where(started & (first_len == 1), met | (1 << first), met)
        going, opened = cont & ~done, started & (first_len > 1)  # (N, M) each
        prog_new = torch.where(going, prog[:, None], torch.where(opened, first, -1))
        pos = torch.where(going, (st.pos + 1)[:, None], opened.long())  # (N, M)
        bits = torch.arange(length.shape[1], device=sent.device)  # (C,)
        count = ((met[:, :, None] >> bits & 1) * length[:, None, :]).sum(2) + pos  # (N, M)
        return ConstraintState(met, prog_new, pos, count)


def fitting(cons: Constraints, max_len: int) -> tuple[Constraints, list[int]]:
    """The constraints that fit ``max_len`` tokens together (dropping the last first) and the
    indices of the dropped ones."""
    kept = list(range(len(cons)))
    while kept and sum(len(cons[k]) for k in kept) > max_len:
        kept.pop()
    return [cons[k] for k in kept], [k for k in range(len(cons)) if k not in kept]


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
    prefix = prefix_table(prefixes, src.device)  # (B, P) or None
    lim = limits(src, src_len, cfg, prefix)
    (B, S), dev, T = src.shape, src.device, lim.steps
    given = [[tuple(c) for c in sent] for sent in constraints]
    fit = [fitting(c, m) for c, m in zip(given, lim.max_len.tolist(), strict=True)]
    table = ConstraintTable.of([c for c, _ in fit], dev)
    width = (table.total + 1).clamp(max=MAX_WIDTH).clamp(min=cfg.beam_size)  # (B,)
    K = cfg.beam_size
    G = int(width.max()) if B else 1  # state rows per sentence: the widest active beam
    out = Finished.empty(B, K, T, S, dev, cfg, tagged=True)  # every sentence's result
    fallback: dict[int, Hypothesis] = {}  # sentences that finished nothing: best live one
    with eval_mode(model):
        sent = longest_first(lim.src_len)  # (b,) original ids of active sentences
        state = model.init_state(model.encode(src[sent], lim.src_len[sent]))
        live = torch.full((B, G), NEG_INF, device=dev)  # (b, G) raw scores; -inf = empty
        live[:, 0] = 0.0
        cst = table.start((B, G), dev)  # (b, G) each
        hist = History.empty((B * G,), T, S, dev, cfg.return_alignment, cfg.return_scores)
        fin = Finished.empty(B, K, T, S, dev, cfg, tagged=True)  # (b, K) per active sentence
        prev = torch.full((B,), BOS_ID, dtype=torch.long, device=dev)  # (B,) first step
        for t in range(T):
            b = sent.numel()
            logp, state = model.step(prev, state)  # (N, V); (B, V) at t = 0
            step_attn = state.attn
            if t == 0:
                logp = logp.repeat_interleave(G, dim=0)  # (N, V) the same row for every slot
                if hist.attn is not None:
                    step_attn = step_attn.repeat_interleave(G, dim=0)  # (N, S)
            row_sent = sent.repeat_interleave(G)  # (N,)
            logp = mask_(logp.float(), t, hist.tokens, lim.min_len[row_sent],
                          lim.max_len[row_sent], cfg.no_repeat_ngram_size,
                          prefix[row_sent] if prefix is not None else None)  # (N, V)
            hist.write(t, attn=step_attn)
            flat = cst.map(lambda x: x.reshape(-1))  # (N,) each
            logp[flat.count < table.total[row_sent], EOS_ID] = NEG_INF  # no end before all met
            # candidates: each row's best tokens and the constraint tokens it may take
            top_v, top_i = topk_first(logp, min(G, logp.shape[1]))  # (N, k) each
            want = table.wanted(row_sent, flat)  # (N, C)
            dup = want < 0  # (N, C) no token, or one the row proposes already
            for j in range(want.shape[1]):
                dup[:, j] |= ((want[:, j:j + 1] == top_i).any(1)
                              | (want[:, j:j + 1] == want[:, :j]).any(1))
            tok = torch.cat([top_i, want.clamp(min=0)], 1)  # (N, M)
            lp = torch.cat([top_v, logp.gather(1, want.clamp(min=0)).masked_fill(dup, NEG_INF)],
                           1)  # (N, M)
            score = live.view(-1, 1) + lp  # (N, M)
            nxt = table.advance(row_sent, flat, tok)  # (N, M) each
            # EOS among a row's best tokens (only once all are met) finishes it
            is_eos = tok == EOS_ID  # (N, M)
            eos_lp = torch.where(is_eos, score, NEG_INF).amax(1).view(b, G)  # (b, G)
            new = eos_lp > NEG_INF
            if bool(new.any()):
                fin = fin.offer(new, eos_lp, t, hist.ending(t, logp[:, EOS_ID]).reshape(b, G),
                                cfg, cst.met)
            # the next live beam: drop what misses the deadline, then allocate by banks
            left = lim.max_len[row_sent] - (t + 1)  # (N,) tokens possible after this one
            ok = (~is_eos & (score > NEG_INF)
                  & (table.total[row_sent, None] - nxt.count <= left[:, None]))  # (N, M)
            pick = _allocate(score, ok, nxt.count, tok, width[sent], table.total[sent], G)
            filled = pick >= 0  # (b, G)
            pick = torch.where(filled, pick, (torch.arange(b, device=dev) * G * tok.shape[1]
                                              )[:, None]).view(-1)  # (b*G,) empty: own row 0
            live = torch.where(filled, score.view(-1)[pick].view(b, G), NEG_INF)  # (b, G)
            cst = nxt.take(pick, b, G)  # (b, G) each
            rows = pick // tok.shape[1]  # (b*G,) parent row of each slot
            prev = tok.view(-1)[pick]  # (b*G,)
            hist = hist.select(rows)
            hist.write(t, tokens=prev, lps=lp.view(-1)[pick])
            # stopping (as in beam search, with each sentence's own width)
            best_live = live.max(dim=1).values  # (b,)
            kth = fin.score[:, -1]  # (b,) the worst of the K best
            beaten = normalise(best_live, t + 1, cfg) <= kth
            done = (best_live == NEG_INF) | ((kth > NEG_INF) & beaten) | (t == T - 1)  # (b,)
            if bool(done.any()):
                out.put(sent[done], fin.select(done))
                for j in (done & (fin.score[:, 0] == NEG_INF)).nonzero().flatten().tolist():
                    fallback[int(sent[j])] = _best_live(live[j], cst.count[j], hist, j * G, t,
                                                        int(lim.src_len[sent[j]]), cfg)
            keep = (~done).nonzero().squeeze(1)  # (b',)
            if keep.numel() == 0:
                break
            # the kept sentences' slots; slots past the widest kept beam are always empty
            g = int(width[sent[keep]].max())
            keep_rows = (keep[:, None] * G + torch.arange(g, device=dev)).view(-1)  # (b'*g,)
            state = model.reorder_state(state, rows[keep_rows] // G if t == 0
                                        else rows[keep_rows])
            live = live[keep, :g]
            prev, hist = prev[keep_rows], hist.select(keep_rows)
            sent, fin = sent[keep], fin.select(keep)
            cst, G = cst.take(keep_rows, -1, g), g
    return _collect(out, fallback, lim.src_len, given, [d for _, d in fit], cfg)


def _lexsort(*keys: torch.Tensor) -> torch.Tensor:
    """The permutation that sorts by ``keys[0]``, then ``keys[1]``, ... (all ascending)."""
    order = torch.arange(keys[0].numel(), device=keys[0].device)
    for key in reversed(keys):
        order = order[key[order].argsort(stable=True)]
    return order


def _group_rank(key: torch.Tensor) -> torch.Tensor:
    """For rows sorted by ``key``, each row's position within its run of equal keys."""
    n = key.numel()
    new = torch.ones(n, dtype=torch.bool, device=key.device)
    new[1:] = key[1:] != key[:-1]
    starts = new.nonzero().squeeze(1)  # (R,)
    sizes = torch.diff(starts, append=torch.tensor([n], device=key.device))  # (R,)
    return torch.arange(n, device=key.device) - starts.repeat_interleave(sizes)


def _allocate(score: torch.Tensor, ok: torch.Tensor, bank: torch.Tensor, tok: torch.Tensor,
              width: torch.Tensor, total: torch.Tensor, G: int) -> torch.Tensor:
    """The next beam of each sentence from its candidates (module docstring): ``width //
    (total + 1)`` slots per bank by score, the rest to the best candidates of any bank; ties
    by parent slot, then token.

    Args:
        score, ok, bank, tok: ``(N, M)`` candidates of the ``N = b * G`` rows: raw scores,
            which may go on, constraint tokens met, tokens.
        width, total: ``(b,)`` beam widths and constraint tokens of the sentences.

    Returns:
        ``(b, G)`` long flat candidate index for each slot, best first; ``-1``: empty.
    """
    M, b = score.shape[1], score.shape[0] // G
    cand = ok.view(-1).nonzero().squeeze(1)  # (P,)
    row = cand // M
    sid = row // G  # (P,)
    neg, bk = -score.view(-1)[cand], bank.view(-1)[cand]  # (P,) each
    tie = (row % G) * (int(tok.max()) + 1) + tok.view(-1)[cand]  # (P,) parent slot, token
    sid_bk = sid * (int(total.max()) + 1) + bk  # (P,) sentence, bank
    base = _lexsort(neg, tie)  # best first; stable sorts by sentence keep this order within
    order = base[sid_bk[base].argsort(stable=True)]  # per sentence and bank, best first
    reserved = torch.empty_like(cand, dtype=torch.bool)
    reserved[order] = _group_rank(sid_bk[order]) < (width // (total + 1))[sid[order]]
    order = base[(sid * 2 + (~reserved).long())[base].argsort(stable=True)]
    taken = torch.zeros_like(reserved)
    taken[order[_group_rank(sid[order]) < width[sid[order]]]] = True
    taken = base[taken[base]]
    taken = taken[sid[taken].argsort(stable=True)]  # per sentence, best first
    pick = torch.full((b, G), -1, dtype=torch.long, device=score.device)
    pick[sid[taken], _group_rank(sid[taken])] = cand[taken]
    return pick


def _best_live(live: torch.Tensor, count: torch.Tensor, hist: History, row0: int, t: int,
               src_len: int, cfg: SearchConfig) -> Hypothesis:
    """A sentence that finished nothing: its live hypothesis (``live``, ``count`` ``(G,)``,
    rows ``row0 ...`` of ``hist``, ``t + 1`` tokens) with the most constraint tokens, then the
    best score; an empty one if none is left."""
    slots = [(c, s, j) for j, (s, c) in enumerate(zip(live.tolist(), count.tolist(),
                                                      strict=True)) if s > NEG_INF]
    if not slots:
        empty = hist.attn.new_zeros(0, src_len) if hist.attn is not None else None
        return Hypothesis([], NEG_INF, NEG_INF, empty, [] if cfg.return_scores else None, [])
    _, s, j = max(slots, key=lambda x: (x[0], x[1], -x[2]))
    tokens, attn, lps = hist.outputs((row0 + j,), t + 1, src_len)
    return Hypothesis(tokens, float(normalise(torch.tensor(s), t + 2, cfg)), s,
                      None if attn is None else attn[:t + 1],
                      None if lps is None else lps[:t + 1], [])


def _collect(out: Finished, fallback: dict[int, Hypothesis], src_len: torch.Tensor,
             given: list[Constraints], dropped: list[list[int]],
             cfg: SearchConfig) -> list[list[Hypothesis]]:
    """Per sentence its finished hypotheses, best first (or its fallback), with which given
    constraints each met."""
    score_l, lp_l, len_l = out.score.tolist(), out.lp.tolist(), out.length.tolist()
    tag_l = out.tag.tolist()
    results = []
    for i, cons in enumerate(given):
        kept = [k for k in range(len(cons)) if k not in dropped[i]]  # given index of each
        if i in fallback:
            found = [(fallback[i], _met_of(fallback[i], cons, kept))]
        else:
            found = []
            for j in range(min(cfg.n_best, len(score_l[i]))):
                if lp_l[i][j] == NEG_INF:
                    break
                tokens, alignment, lps = out.hist.outputs((i, j), len_l[i][j], int(src_len[i]))
                met = [False] * len(cons)
                for bit, k in enumerate(kept):
                    met[k] = bool(tag_l[i][j] >> bit & 1)
                found.append((Hypothesis(tokens, score_l[i][j], lp_l[i][j], alignment, lps),
                              met))
        for h, met in found:
            h.constraints_met = met
        results.append([h for h, _ in found])
    return results


def _met_of(h: Hypothesis, cons: Constraints, kept: list[int]) -> list[bool]:
    """Which given constraints the (unfinished) hypothesis ``h`` contains (the kept ones)."""
    return [k in kept and any(tuple(h.tokens[p:p + len(c)]) == c
                              for p in range(len(h.tokens) - len(c) + 1))
            for k, c in enumerate(cons)]


__all__ = ["ConstraintState", "ConstraintTable", "constrained_search", "fitting"]
