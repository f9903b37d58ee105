"""Tests for seq2seq.rnn.gru: gradcheck of the fused GRU layer and parity with nn.GRU."""

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seq2seq.rnn.gru import gru_layer
from seq2seq.rnn.ragged import Ragged

F64 = torch.float64


def _weights(nd, hid, isize, gen):
    ws = []
    for _ in range(nd):
        for shape in [(3 * hid, isize), (3 * hid, hid), (3 * hid,), (3 * hid,)]:
            ws.append(torch.randn(shape, dtype=F64, generator=gen).requires_grad_())
    return ws


@pytest.mark.parametrize("nd", [1, 2])
@pytest.mark.parametrize("lengths", [None, [4, 2, 1]])
def test_gradcheck(nd, lengths):
    gen = torch.Generator().manual_seed(nd)
    steps, batch, isize, hid = 4, 3, 2, 3
    x = torch.randn(steps, batch, isize, dtype=F64, generator=gen).requires_grad_()
    h0 = torch.randn(nd, batch, hid, dtype=F64, generator=gen).requires_grad_()
    ws = _weights(nd, hid, isize, gen)
    rg = Ragged(None if lengths is None else torch.tensor(lengths), steps, batch, x.device)

    def fn(x, h0, *w):
        return gru_layer(x, h0, rg, list(w))

    assert torch.autograd.gradcheck(fn, (x, h0, *ws))


def test_gradcheck_final_state_only():
    """Gradient reaching the layer only through h_n (ragged, bidirectional)."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(3, 2, 2, dtype=F64, generator=gen).requires_grad_()
    h0 = torch.randn(2, 2, 2, dtype=F64, generator=gen).requires_grad_()
    ws = _weights(2, 2, 2, gen)
    rg = Ragged(torch.tensor([2, 3]), 3, 2, x.device)

    def fn(x, h0, *w):
        return gru_layer(x, h0, rg, list(w))[1]

    assert torch.autograd.gradcheck(fn, (x, h0, *ws))


def test_bidirectional_layer_matches_packed_native():
    torch.manual_seed(0)
    native = torch.nn.GRU(5, 4, bidirectional=True)
    x = torch.randn(6, 4, 5, requires_grad=True)
    lengths = torch.tensor([6, 2, 5, 1])
    packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
    y_ref, h_ref = native(packed)
    y_ref, _ = pad_packed_sequence(y_ref, total_length=6)
    weights = [p for _, p in native.named_parameters()]
    zeros = torch.zeros(2, 4, 4)
    y, h = gru_layer(x, zeros, Ragged(lengths, 6, 4, x.device), weights)
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(h, h_ref)
    assert y[2:, 1].abs().max() == 0.0  # padded outputs are exactly zero
    gx_ref, gw_ref = torch.autograd.grad(y_ref.sum() + h_ref.sum(), (x, weights[5]))
    gx, gw = torch.autograd.grad(y.sum() + h.sum(), (x, weights[5]))
    torch.testing.assert_close(gx, gx_ref)
    torch.testing.assert_close(gw, gw_ref)
    assert gx[2:, 1].abs().max() == 0.0  # padded inputs get no gradient
