"""Tests for seq2seq.rnn.pointwise: mode selection, eager in-place steps vs the reference math."""

import pytest
import torch

from seq2seq.rnn import FusedGRU, FusedLSTM, compiled
from seq2seq.rnn import pointwise as pw

STEPS, BATCH, ISIZE, HID = 5, 4, 3, 5
LENGTHS = torch.tensor([5, 2, 4, 1])


def test_pointwise_for_selects_by_device_and_mode():
    assert pw.pointwise_for("cpu") is pw.EAGER
    assert pw.pointwise_for(torch.device("cuda", 0)) is pw.COMPILED  # no GPU needed to select
    assert pw.pointwise_for("cuda", "eager") is pw.EAGER
    assert pw.pointwise_for("cpu", "compile") is pw.COMPILED
    with pytest.raises(ValueError, match="fused_pointwise"):
        pw.pointwise_for("cpu", "triton")
    with pytest.raises(ValueError, match="fused_pointwise"):
        FusedGRU(ISIZE, HID, fused_pointwise="fast")
    rnn = FusedLSTM(ISIZE, HID, 2, True, fused_pointwise="eager")  # positional args unchanged
    assert rnn.num_layers == 2 and rnn.bidirectional and rnn.fused_pointwise == "eager"
    assert "fused_pointwise='eager'" in repr(rnn)


def _rand(*shape, gen, lo=-1.0, hi=1.0):
    return torch.rand(*shape, dtype=torch.float64, generator=gen) * (hi - lo) + lo


def test_pure_math_matches_eager_steps():
    """The pure functions (uncompiled) reproduce the in-place eager steps, forward and backward."""
    gen = torch.Generator().manual_seed(0)
    nd, t = 2, 3
    # GRU forward
    gates, hgates = _rand(nd, t, BATCH, 3 * HID, gen=gen), _rand(nd, t, BATCH, 3 * HID, gen=gen)
    hs = _rand(nd, t + 1, BATCH, HID, gen=gen)
    act, h = compiled.gru_forward_math(gates[:, 1], hgates[:, 1], hs[:, 1])
    pw.gru_forward_eager(gates, hgates, hs)(1)
    torch.testing.assert_close(act, gates[:, 1])
    torch.testing.assert_close(h, hs[:, 2])
    # GRU backward (gates now holds activations in [0, 1])
    gates = _rand(nd, t, BATCH, 3 * HID, gen=gen, lo=0.0)
    dh = _rand(nd, t, BATCH, HID, gen=gen)
    dgx, dgh = torch.zeros_like(gates), torch.zeros_like(gates)
    dh0 = torch.zeros(nd, BATCH, HID, dtype=torch.float64)
    for step_t in (1, 0):
        d_prev = (dh[:, step_t - 1] if step_t else dh0).clone()
        gx, gh, carry = compiled.gru_backward_math(dh[:, step_t], gates[:, step_t], hgates[:, step_t],
                                             hs[:, step_t])
        pw.gru_backward_eager(gates, hgates, hs, dh, dgx, dgh, dh0)(step_t)
        torch.testing.assert_close(gx, dgx[:, step_t])
        torch.testing.assert_close(gh, dgh[:, step_t])
        expected = d_prev + carry if step_t else carry
        torch.testing.assert_close(dh[:, step_t - 1] if step_t else dh0, expected)
    assert dgx.abs().sum() > 0 and dgh.abs().sum() > 0
    # LSTM forward: pre-activations come from a separate (D, B, 4H) block
    gates = torch.zeros(nd, t, BATCH, 4 * HID, dtype=torch.float64)
    pre = _rand(nd, BATCH, 4 * HID, gen=gen)
    hs, cs = _rand(nd, t + 1, BATCH, HID, gen=gen), _rand(nd, t + 1, BATCH, HID, gen=gen)
    tcs = _rand(nd, t, BATCH, HID, gen=gen)
    act, c, tc, h = compiled.lstm_forward_math(pre, cs[:, 2])
    pw.lstm_forward_eager(pre, gates, hs, cs, tcs)(2)
    for a, b in ((act, gates[:, 2]), (c, cs[:, 3]), (tc, tcs[:, 2]), (h, hs[:, 3])):
        torch.testing.assert_close(a, b)
    # LSTM backward, walked over two steps (coefficients are precomputed for all steps)
    gates = _rand(nd, t, BATCH, 4 * HID, gen=gen, lo=0.0)
    dgates = torch.zeros_like(gates)
    dc = _rand(nd, BATCH, HID, gen=gen)
    expected_dc = dc.clone()
    step = pw.lstm_backward_eager(gates, cs, tcs, dh, dgates, dc)
    for step_t in (2, 1):
        dg, expected_dc = compiled.lstm_backward_math(dh[:, step_t], expected_dc, gates[:, step_t],
                                                cs[:, step_t], tcs[:, step_t])
        step(step_t)
        torch.testing.assert_close(dg, dgates[:, step_t])
        torch.testing.assert_close(expected_dc, dc)
    assert dgates[:, 0].abs().sum() == 0 and dgates[:, 1:].abs().min() > 0
