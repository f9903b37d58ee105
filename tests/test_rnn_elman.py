"""Tests for seq2seq.rnn.elman: fp64 gradcheck of the fused Elman layer (both nonlinearities,
both directions, ragged lengths) and parity with nn.RNN on a packed batch."""

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seq2seq.rnn.elman import rnn_cell_math, rnn_layer
from seq2seq.rnn.ragged import Ragged

F64 = torch.float64


def _weights(nd, hid, isize, gen):
    ws = []
    for _ in range(nd):
        for shape in [(hid, isize), (hid, hid), (hid,), (hid,)]:
            ws.append((0.7 * torch.randn(shape, dtype=F64, generator=gen)).requires_grad_())
    return ws


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("nd", [1, 2])
@pytest.mark.parametrize("lengths", [None, [4, 2, 1]])
def test_gradcheck(nonlinearity, nd, lengths):
    gen = torch.Generator().manual_seed(nd + 7 * (nonlinearity == "relu"))
    steps, batch, isize, hid = 4, 3, 2, 3
    x = torch.randn(steps, batch, isize, dtype=F64, generator=gen).requires_grad_()
    h0 = torch.randn(nd, batch, hid, dtype=F64, generator=gen).requires_grad_()
    ws = _weights(nd, hid, isize, gen)
    rg = Ragged(None if lengths is None else torch.tensor(lengths), steps, batch, x.device)

    def fn(x, h0, *w):
        return rnn_layer(x, h0, rg, list(w), nonlinearity=nonlinearity)

    assert torch.autograd.gradcheck(fn, (x, h0, *ws))


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_gradcheck_final_state_only(nonlinearity):
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(3, 2, 2, dtype=F64, generator=gen).requires_grad_()
    h0 = torch.randn(2, 2, 2, dtype=F64, generator=gen).requires_grad_()
    ws = _weights(2, 2, 2, gen)
    rg = Ragged(torch.tensor([2, 3]), 3, 2, x.device)

    def fn(x, h0, *w):
        return rnn_layer(x, h0, rg, list(w), nonlinearity=nonlinearity)[1]

    assert torch.autograd.gradcheck(fn, (x, h0, *ws))


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_bidirectional_layer_matches_packed_native(nonlinearity):
    torch.manual_seed(0)
    native = torch.nn.RNN(5, 4, bidirectional=True, nonlinearity=nonlinearity)
    x = torch.randn(6, 4, 5, requires_grad=True)
    lengths = torch.tensor([6, 2, 5, 1])
    packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
    y_ref, h_ref = native(packed)
    y_ref, _ = pad_packed_sequence(y_ref, total_length=6)
    weights = [p for _, p in native.named_parameters()]
    y, h = rnn_layer(x, torch.zeros(2, 4, 4), Ragged(lengths, 6, 4, x.device), weights,
                     nonlinearity=nonlinearity)
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(h, h_ref)
    assert y[2:, 1].abs().max() == 0.0  # padded outputs are exactly zero
    grads_ref = torch.autograd.grad(y_ref.sum() + h_ref.sum(), (x, *weights))
    grads = torch.autograd.grad(y.sum() + h.sum(), (x, *weights))
    for g, g_ref in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(g, g_ref)
    assert grads[0][2:, 1].abs().max() == 0.0  # padded inputs get no gradient


def test_no_grad_call_between_forward_and_backward_leaves_grads_alone():
    """The scratch buffers of an inference call do not overwrite a pending backward's state."""
    torch.manual_seed(1)
    native = torch.nn.RNN(3, 4)
    ws = [p for _, p in native.named_parameters()]
    x = torch.randn(5, 2, 3, requires_grad=True)
    rg = Ragged(None, 5, 2, x.device)
    y, _ = rnn_layer(x, torch.zeros(1, 2, 4), rg, ws)
    ref = torch.autograd.grad(y.sum(), ws, retain_graph=True)
    with torch.no_grad():
        rnn_layer(torch.randn(5, 2, 3) * 50, torch.zeros(1, 2, 4), rg, ws)
    for g, r in zip(torch.autograd.grad(y.sum(), ws), ref, strict=True):
        assert torch.equal(g, r)


def test_cell_math_and_bad_nonlinearity():
    pre = torch.tensor([-2.0, 0.0, 3.0])
    assert torch.equal(rnn_cell_math(pre, "relu"), torch.tensor([0.0, 0.0, 3.0]))
    # the core's tanh (seq2seq.rnn.activation): within 3e-7 of the exact value
    torch.testing.assert_close(rnn_cell_math(pre), torch.tanh(pre.double()).float(),
                               atol=3e-7, rtol=0)
    with pytest.raises(ValueError, match="nonlinearity must be one of"):
        rnn_layer(torch.zeros(2, 1, 1), torch.zeros(1, 1, 1), Ragged(None, 2, 1, pre.device),
                  [torch.zeros(1, 1)] * 2 + [torch.zeros(1)] * 2, nonlinearity="gelu")
