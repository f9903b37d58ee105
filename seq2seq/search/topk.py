"""Exact top-k of beam extensions with first-index tie breaking, without scanning ``K * V`` twice.

Beam search ranks, per sentence, all ``K * V`` extensions ``live[slot] + logp[slot, token]`` and
keeps the best ``2K``. ``torch.topk`` over the ``(b, K * V)`` candidate matrix is the obvious way
and the slowest part of a batched beam step on CPU (partial sorts over 20,000 values per
sentence). :func:`beam_topk` gets the same answer in two cheap passes:

1. The vocabulary is split into ``L`` lanes (lane ``j`` holds the tokens ``j, j + L, j + 2L,
   ...``; a tail of ``V mod L`` tokens is kept whole). One vectorised ``amax`` gives every
   lane's maximum; adding ``live`` gives the lane maxima of the candidates (``x -> live + x``
   is monotone in float arithmetic, so the maximum commutes with the addition).
2. Only the ``m = k + 1`` lanes with the largest maxima (per sentence, over all slots) can hold
   the ``m`` largest candidates: a candidate outside them is below or equal to ``m`` lane maxima
   from other lanes. Those lanes (plus the tail) are gathered and a small ``topk`` finishes.

Ties follow :func:`topk_first` (lower index wins). The ``k + 1``-th value tells whether the
``k``-th place is tied; such rare rows are redone by a stable full sort, exactly as in
:func:`topk_first`. Candidates of ``-inf`` carry arbitrary indices in both functions; search
never uses them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

NEG_INF = float("-inf")
LANES = (256, 250, 200, 160, 128, 125, 100)  # lane counts tried; the smallest tail wins


def _ordered(vals: torch.Tensor, idx: torch.Tensor, k: int,
             full_rows: Callable[[torch.Tensor], torch.Tensor],
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Finish a first-index top-k from the top ``k + 1`` (or ``k``) values of each row.

    Args:
        vals, idx: ``(b, m)`` with ``m in (k, k + 1)``: the ``m`` largest values of each row
            and their column indices, in any order among equal values.
        k: how many to return.
        full_rows: ``rows (r,) -> (r, M)`` the complete score rows, for rows whose ``k``-th
            place is tied (then the set itself depends on the tie-break).

    Returns:
        ``(values (b, k), indices (b, k))`` sorted descending, equal values by lower index.
    """
    if vals.shape[1] > k:  # boundary tie <=> the (k+1)-th largest value equals the k-th
        tied = (vals[:, k] == vals[:, k - 1]) & (vals[:, k - 1] > NEG_INF)  # (b,)
        vals, idx = vals[:, :k], idx[:, :k]  # (b, k)
        if bool(tied.any()):  # rare: redo those rows with a stable full sort
            rows = tied.nonzero().squeeze(1)  # (r,)
            sv, si = full_rows(rows).sort(dim=1, descending=True, stable=True)  # (r, M)
            vals, idx = vals.clone(), idx.clone()
            vals[rows], idx[rows] = sv[:, :k], si[:, :k]
    idx, order = idx.sort(dim=1)  # ascending index, then stable by value
    vals = vals.gather(1, order)  # (b, k)
    vals, order = vals.sort(dim=1, descending=True, stable=True)
    return vals, idx.gather(1, order)


def topk_first(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row-wise top-k, sorted descending, equal values ordered (and selected) by lower index.

    Args:
        scores: ``(b, M)``.
        k: ``1 <= k <= M``.

    Returns:
        ``(values (b, k), indices (b, k))``.
    """
    m = min(k + 1, scores.shape[1])
    vals, idx = scores.topk(m, dim=1)  # (b, m)
    return _ordered(vals, idx, k, lambda rows: scores[rows])


def _lanes(V: int, need: int) -> int:
    """Lane count for a vocabulary of ``V`` (0 = too small to be worth it)."""
    best = min(LANES, key=lambda L: (V % L, -L))
    return best if V // best >= 4 and best >= need else 0


def beam_topk(logp: torch.Tensor, live: torch.Tensor,
              k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top-k beam extensions per sentence, equal to ``topk_first`` over all ``K * V`` of them.

    Args:
        logp: ``(b * K, V)`` step log-probs (masked), rows ``s * K ... s * K + K - 1`` are the
            ``K`` slots of sentence ``s``.
        live: ``(b, K)`` cumulative scores of the slots (``-inf`` for empty slots).
        k: ``1 <= k <= K * V``.

    Returns:
        ``(values (b, k), indices (b, k), row_max (b * K,))``: the same values and indices
        (``slot * V + token``) as ``topk_first((live.view(-1, 1) + logp).view(b, K * V), k)``,
        and each row's maximum of ``logp``.
    """
    N, V = logp.shape
    b, K = live.shape
    L = _lanes(V, k + 1)
    if L == 0 or K * L < k + 1:
        cand = (live.view(-1, 1) + logp).view(b, K * V)  # (b, K*V)
        vals, idx = topk_first(cand, k)
        return vals, idx, logp.amax(dim=1)
    G = V // L  # tokens per lane
    main = logp[:, : G * L].view(N, G, L)  # (N, G, L) token g * L + j in lane j
    lane_max = main.amax(dim=1)  # (N, L)
    row_max = lane_max.amax(dim=1)  # (N,)
    lane_score = (lane_max + live.view(-1, 1)).view(b, K * L)  # (b, K*L)
    _, lane = lane_score.topk(k + 1, dim=1)  # (b, k+1) best lanes over all slots
    slot, j = lane // L, lane % L  # (b, k+1)
    rows = torch.arange(b, device=logp.device)[:, None] * K + slot  # (b, k+1)
    vals = main[rows, :, j] + live.gather(1, slot)[:, :, None]  # (b, k+1, G)
    g = torch.arange(G, device=logp.device) * L  # (G,)
    idx = (slot * V + j)[:, :, None] + g  # (b, k+1, G)
    vals, idx = vals.view(b, -1), idx.view(b, -1)  # (b, (k+1)*G)
    tail = V - G * L
    if tail:
        t_vals = (logp[:, G * L:].reshape(b, K, tail) + live[:, :, None]).view(b, -1)  # (b, K*tail)
        t_idx = (torch.arange(K, device=logp.device)[:, None] * V + G * L
                 + torch.arange(tail, device=logp.device))  # (K, tail)
        row_max = torch.maximum(row_max, logp[:, G * L:].amax(dim=1))
        vals = torch.cat([vals, t_vals], dim=1)  # (b, M')
        idx = torch.cat([idx, t_idx.view(1, -1).expand(b, -1)], dim=1)  # (b, M')
    top, pos = vals.topk(k + 1, dim=1)  # (b, k+1)

    def full_rows(r: torch.Tensor) -> torch.Tensor:
        return (live[r].view(-1, 1) + logp.view(b, K, V)[r].view(-1, V)).view(-1, K * V)

    vals, idx = _ordered(top, idx.gather(1, pos), k, full_rows)
    return vals, idx, row_max


def first_max_is(logp: torch.Tensor, row_max: torch.Tensor, token: int) -> torch.Tensor:
    """Rows whose FIRST maximum is ``token``, i.e. ``logp.argmax(1) == token``, in O(token).

    Args:
        logp: ``(N, V)``.
        row_max: ``(N,)`` the row maxima of ``logp``.
        token: column index.

    Returns:
        ``(N,)`` bool.
    """
    out = logp[:, token] == row_max  # (N,)
    if token > 0:
        out &= (logp[:, :token] < row_max[:, None]).all(dim=1)
    return out


__all__ = ["beam_topk", "first_max_is", "topk_first"]
