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
* **Target prefix** (``prefixes``, per sentence, any lengths): while ``t`` is inside a
  sentence's prefix, every token but the prefix token gets ``-inf`` and the prefix token keeps
  its own log-prob (the other masks do not apply to it), so every hypothesis starts with the
  prefix and its log-prob counts it; the beam holds one live hypothesis until the prefix ends
  and widens after it. A prefix longer than the maximum length raises that maximum to it.
* **Per-token scores** (``return_scores``): each hypothesis also carries the log-prob of each of
  its tokens and of its EOS (they sum to ``log_prob``).
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
shares the masks, lengths and scoring above; it returns one hypothesis per sentence. Sampling
(:mod:`seq2seq.search.sampling`) and forced decoding of given targets
(:mod:`seq2seq.search.forced`) share them too.

The model is put in eval mode for the search (and restored afterwards) and is called under
``torch.inference_mode()``. Search may modify the log-prob tensors ``step`` returns in place.
"""

from __future__ import annotations

import torch

from seq2seq.config import SearchConfig
from seq2seq.search.beam import beam_search
from seq2seq.search.constrained import constrained_search
from seq2seq.search.forced import forced_decode
from seq2seq.search.greedy import greedy_search
from seq2seq.search.sampling import sample_search
from seq2seq.search.scoring import (
    DecoderModel,
    Hypothesis,
    max_lengths,
    normalise,
)


def search(model: DecoderModel, src: torch.Tensor, src_len: torch.Tensor,
           cfg: SearchConfig, prefixes: list[list[int]] | None = None,
           constraints: list[list[list[int]]] | None = None) -> list[list[Hypothesis]]:
    """Sampling when ``cfg.sampling``, else greedy search when ``cfg.beam_size == 1``, else beam
    search; sentences with constraints by :func:`constrained_search` (any beam size).

    Args:
        model: implements the decoder protocol.
        src: ``(B, S)`` long source ids; src_len: ``(B,)`` long true lengths.
        cfg: search options.
        prefixes: per sentence target ids the output must start with (or None).
        constraints: per sentence the target id sequences its output must contain (empty:
            none; such sentences are searched exactly as without constraints).

    Returns:
        Per sentence (input order) its hypotheses, best first.

    Raises:
        ValueError: constraints with sampling.
    """
    todo = [i for i, c in enumerate(constraints or []) if c]
    if not todo:
        return _search(model, src, src_len, cfg, prefixes)
    if cfg.sampling:
        raise ValueError("glossary constraints need beam or greedy search, not "
                         "search.sampling=true")
    free = [i for i in range(src.shape[0]) if i not in set(todo)]
    out: list[list[Hypothesis] | None] = [None] * src.shape[0]

    def part(ids: list[int]) -> tuple[torch.Tensor, torch.Tensor, list | None]:
        index = torch.tensor(ids, dtype=torch.long, device=src.device)
        return src[index], src_len[index], [prefixes[i] for i in ids] if prefixes else None

    if free:
        s, n, p = part(free)
        for i, h in zip(free, _search(model, s, n, cfg, p), strict=True):
            out[i] = h
    s, n, p = part(todo)
    for i, h in zip(todo, constrained_search(model, s, n, cfg, [constraints[i] for i in todo],
                                             p), strict=True):
        out[i] = h
    return out  # type: ignore[return-value]


def _search(model: DecoderModel, src: torch.Tensor, src_len: torch.Tensor, cfg: SearchConfig,
            prefixes: list[list[int]] | None = None) -> list[list[Hypothesis]]:
    if cfg.sampling:
        return sample_search(model, src, src_len, cfg, prefixes)
    if cfg.beam_size == 1:
        return greedy_search(model, src, src_len, cfg, prefixes)
    return beam_search(model, src, src_len, cfg, prefixes)


__all__ = ["DecoderModel", "Hypothesis", "beam_search", "constrained_search", "forced_decode",
           "greedy_search", "max_lengths", "normalise", "sample_search", "search"]
