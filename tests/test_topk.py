"""Exact beam top-k: lane-pruned selection equals the full first-index top-k."""

from __future__ import annotations

import pytest
import torch

from seq2seq.search.topk import NEG_INF, beam_topk, first_max_is, topk_first


def test_topk_first_breaks_ties_by_lower_index() -> None:
    scores = torch.tensor([[0.0, 5.0, 3.0, 5.0, 3.0, 3.0],
                           [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])
    vals, idx = topk_first(scores, 3)
    assert idx.tolist() == [[1, 3, 2], [0, 1, 2]]
    assert vals.tolist() == [[5.0, 5.0, 3.0], [1.0, 1.0, 1.0]]


def test_topk_first_whole_row() -> None:
    vals, idx = topk_first(torch.tensor([[2.0, 7.0, 2.0]]), 3)
    assert idx.tolist() == [[1, 0, 2]]
    assert vals.tolist() == [[7.0, 2.0, 2.0]]


def _random_beam(b: int, K: int, V: int, seed: int,
                 levels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs with many exact ties (values on a coarse grid) and some masked entries."""
    g = torch.Generator().manual_seed(seed)
    logp = -torch.randint(0, levels, (b * K, V), generator=g).float() / 4  # (b*K, V)
    logp[torch.rand(b * K, V, generator=g) < 0.2] = NEG_INF
    logp[1, :] = NEG_INF  # a fully masked row
    logp[2, 5:] = NEG_INF  # a row with only 5 finite entries
    live = -torch.randint(0, 3, (b, K), generator=g).float() / 4  # (b, K)
    live[0, 1:] = NEG_INF  # empty slots
    return logp, live


@pytest.mark.parametrize("V", [4000, 4003, 1000, 37])
@pytest.mark.parametrize("levels", [3, 50, 100000])
def test_beam_topk_equals_full_topk(V: int, levels: int) -> None:
    b, K, k = 6, 5, 10
    for seed in range(3):
        logp, live = _random_beam(b, K, V, seed, levels)
        vals, idx, row_max = beam_topk(logp, live, k)
        ref_vals, ref_idx = topk_first((live.view(-1, 1) + logp).view(b, K * V), k)
        finite = ref_vals > NEG_INF  # -inf candidates carry arbitrary indices
        assert torch.equal(vals, ref_vals)
        assert torch.equal(idx[finite], ref_idx[finite])
        assert torch.equal(row_max, logp.amax(dim=1))


def test_beam_topk_sentence_with_one_winning_slot() -> None:
    # all k best extensions come from slot 3, four of them from one lane (tokens = 7 mod 250)
    b, K, V, k = 2, 4, 1000, 6
    logp = torch.full((b * K, V), -9.0)
    logp[3, [7, 257, 507, 757, 8, 9]] = torch.tensor([-1.0, -2.0, -1.0, -3.0, -1.0, -2.5])
    live = torch.zeros(b, K)
    vals, idx, _ = beam_topk(logp, live, k)
    assert idx[0].tolist() == [3 * V + t for t in (7, 8, 507, 257, 9, 757)]
    assert vals[0].tolist() == [-1.0, -1.0, -1.0, -2.0, -2.5, -3.0]
    assert idx[1].tolist() == list(range(k))  # all tied: lowest indices first


def test_first_max_is_matches_argmax() -> None:
    g = torch.Generator().manual_seed(0)
    logp = -torch.randint(0, 3, (200, 12), generator=g).float()  # (200, 12) many ties
    logp[:3] = NEG_INF
    logp[3, :] = torch.tensor([NEG_INF] * 3 + [0.0] + [NEG_INF] * 8)
    got = first_max_is(logp, logp.amax(dim=1), 3)
    assert torch.equal(got, logp.argmax(dim=1) == 3)
    assert bool(got[3]) and not bool(got[:3].any())
    assert int(got.sum()) > 10  # the tied cases are exercised
