"""Weight average: bias-corrected EMA by hand, the swap in and out, tied weights, state round trip."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from seq2seq.training.ema import WeightAverage


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(3, 2)
        self.out = nn.Linear(2, 3)
        self.out.weight = self.emb.weight  # one tensor under two names
        self.steps = nn.Parameter(torch.zeros(()), requires_grad=False)


def _set(model: Tied, value: float) -> None:
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(value)


def test_bias_corrected_average_is_the_normalised_weighted_mean() -> None:
    m, d = Tied(), 0.5
    ema = WeightAverage(m, d)
    for value in (1.0, 2.0, 4.0):
        _set(m, value)
        ema.update()
    # weights (1-d) d^(n-k), normalised by 1 - d^n: 0.125/0.875, 0.25/0.875, 0.5/0.875
    want = (0.125 * 1 + 0.25 * 2 + 0.5 * 4) / 0.875  # = 3.0
    avg = ema.averaged()
    assert sorted(avg) == ["emb.weight", "out.bias", "steps"]  # the tied weight once
    for t in avg.values():
        torch.testing.assert_close(t, torch.full_like(t, want), rtol=0, atol=1e-6)
    # after one update the average is that update's weights, not 1-d of them
    one = WeightAverage(m, 0.999)
    _set(m, 7.0)
    one.update()
    torch.testing.assert_close(one.averaged()["out.bias"], torch.full((3,), 7.0))


def test_applied_swaps_the_average_in_and_the_raw_weights_back() -> None:
    torch.manual_seed(0)
    m = Tied()
    ema = WeightAverage(m, 0.9)
    ema.update()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(1.0)
    ema.update()
    raw = {k: v.clone() for k, v in m.state_dict().items()}
    avg = ema.averaged()
    with ema.applied():
        torch.testing.assert_close(m.emb.weight, avg["emb.weight"], rtol=0, atol=0)
        assert m.out.weight is m.emb.weight  # still tied
        assert not torch.equal(m.out.bias, raw["out.bias"])
    for k, v in m.state_dict().items():
        assert torch.equal(v, raw[k]), k
    with pytest.raises(RuntimeError, match="inside"), ema.applied():
        raise RuntimeError("inside")
    assert torch.equal(m.out.bias, raw["out.bias"])  # restored on error too


def test_state_round_trip_continues_identically() -> None:
    torch.manual_seed(0)
    m = Tied()
    a = WeightAverage(m, 0.8)
    for _ in range(3):
        with torch.no_grad():
            m.out.bias.mul_(1.5)
        a.update()
    b = WeightAverage(m, 0.8)
    b.load_state_dict(a.state_dict())
    for ema in (a, b):
        with torch.no_grad():
            m.out.bias.add_(0.0)
        ema.update()
    for k, v in a.averaged().items():
        assert torch.equal(v, b.averaged()[k]), k
    state = a.state_dict()
    state["biased"].pop("steps")
    with pytest.raises(ValueError, match="other parameters"):
        b.load_state_dict(state)
