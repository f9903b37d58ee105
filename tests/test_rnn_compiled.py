"""Tests for seq2seq.rnn.compiled: the reference gate math, and ``torch.compile``-fused steps
match the eager path."""

import pytest
import torch
from torch import nn

from seq2seq.rnn import FusedGRU, FusedLSTM, compiled
from seq2seq.rnn import pointwise as pw

STEPS, BATCH, ISIZE, HID = 5, 4, 3, 5
LENGTHS = torch.tensor([5, 2, 4, 1])


def _run(cls, mode, state, x, lengths, device="cpu"):
    rnn = cls(ISIZE, HID, num_layers=2, bidirectional=True, fused_pointwise=mode).to(device)
    rnn.load_state_dict(state)
    x = x.detach().to(device).requires_grad_()
    y, s = rnn(x, lengths)
    states = list(s) if isinstance(s, tuple) else [s]
    gen = torch.Generator().manual_seed(9)
    loss = (y * torch.randn(y.shape, generator=gen).to(device)).sum()
    loss = loss + sum((a * torch.randn(a.shape, generator=gen).to(device)).sum() for a in states)
    loss.backward()
    grads = [x.grad] + [p.grad for p in rnn.parameters()]
    return [t.detach().cpu() for t in [y, *states, *grads]]


@pytest.mark.slow  # inductor builds C++ kernels with gcc: ~20 s cold here
@pytest.mark.parametrize("cls", [FusedGRU, FusedLSTM])
def test_compiled_matches_eager_on_cpu(cls):
    """fused_pointwise="compile" on CPU: outputs, final states and all gradients match eager."""
    torch.manual_seed(1)
    state = cls(ISIZE, HID, num_layers=2, bidirectional=True).state_dict()
    x = torch.randn(STEPS, BATCH, ISIZE)
    for lengths in (LENGTHS, None):
        eager = _run(cls, "eager", state, x, lengths)
        compiled = _run(cls, "compile", state, x, lengths)
        assert all(t.abs().sum() > 0 for t in eager)
        for a, b in zip(compiled, eager, strict=True):
            torch.testing.assert_close(a, b)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("cls", [FusedGRU, FusedLSTM])
def test_cuda_auto_compiled_matches_cpu_eager(cls):
    """The default ("auto") path on CUDA is the compiled one and matches the CPU eager path."""
    assert pw.pointwise_for(torch.device("cuda")).compiled
    torch.manual_seed(2)
    state = cls(ISIZE, HID, num_layers=2, bidirectional=True).state_dict()
    x = torch.randn(STEPS, BATCH, ISIZE)
    for lengths in (LENGTHS, None):
        cpu = _run(cls, "auto", state, x, lengths)
        gpu = _run(cls, "auto", state, x, lengths, device="cuda")
        for a, b in zip(gpu, cpu, strict=True):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_gru_cell_math_matches_torch_gru_cell() -> None:
    torch.manual_seed(0)
    cell = nn.GRUCell(3, 4)
    x, h = torch.randn(2, 3), torch.randn(2, 4)
    gi = x @ cell.weight_ih.t() + cell.bias_ih
    gh = h @ cell.weight_hh.t() + cell.bias_hh
    torch.testing.assert_close(compiled.gru_cell_math(gi, gh, h)[2], cell(x, h))


def test_lstm_cell_math_matches_torch_lstm_cell() -> None:
    torch.manual_seed(0)
    cell = nn.LSTMCell(3, 4)
    x, h, c = torch.randn(2, 3), torch.randn(2, 4), torch.randn(2, 4)
    gates = x @ cell.weight_ih.t() + cell.bias_ih + h @ cell.weight_hh.t() + cell.bias_hh
    h2, c2 = compiled.lstm_cell_math(gates, c)
    eh, ec = cell(x, (h, c))
    torch.testing.assert_close(h2, eh)
    torch.testing.assert_close(c2, ec)




def test_lstm_forward_math_is_lstm_cell_math_in_the_internal_layout() -> None:
    """The fused layers' o/2, i/2, f/2, g layout computes the same step as PyTorch's i, f, g, o."""
    torch.manual_seed(0)
    gates, c = torch.randn(2, 3, 16), torch.randn(2, 3, 4)  # (D, B, 4H), (D, B, H)
    i, f, g, o = gates.chunk(4, dim=-1)
    _, c_new, _, h_new = compiled.lstm_forward_math(torch.cat([o / 2, i / 2, f / 2, g], -1), c)
    h_ref, c_ref = compiled.lstm_cell_math(gates, c)
    torch.testing.assert_close(c_new, c_ref, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(h_new, h_ref, atol=1e-6, rtol=1e-5)
