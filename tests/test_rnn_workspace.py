"""Scratch buffers of the fused layers: reused across calls, never shared with live results."""

from __future__ import annotations

import pytest
import torch

from seq2seq.rnn import FusedGRU, FusedLSTM
from seq2seq.rnn.workspace import backward_possible, buffer, cached_bytes, release


def test_buffer_reuses_storage_and_grows() -> None:
    release()
    like = torch.zeros(())
    a = buffer("t.a", (4, 5), like)
    a.fill_(1.0)
    b = buffer("t.a", (2, 3), like)  # smaller request: same storage
    assert b.data_ptr() == a.data_ptr() and b.shape == (2, 3)
    c = buffer("t.a", (10, 10), like)  # larger: a new, bigger storage
    assert c.numel() == 100 and c.is_contiguous()
    assert buffer("t.b", (2, 3), like).data_ptr() != c.data_ptr()  # names do not share
    assert buffer("t.a", (2,), like, reuse=False).data_ptr() != c.data_ptr()
    assert cached_bytes() == (100 + 6) * 4
    release()
    assert cached_bytes() == 0


def test_inference_mode_buffers_are_separate() -> None:
    release()
    like = torch.zeros(())
    with torch.inference_mode():
        inf = buffer("t.x", (3,), like)
    normal = buffer("t.x", (3,), like)
    assert normal.data_ptr() != inf.data_ptr()
    normal.add_(1.0)  # writing an inference tensor here would raise


def test_backward_possible() -> None:
    w = torch.zeros(2, requires_grad=True)
    assert backward_possible(torch.zeros(2), w)
    assert not backward_possible(torch.zeros(2))
    with torch.no_grad():
        assert not backward_possible(w)


@pytest.mark.parametrize("cls", [FusedLSTM, FusedGRU])
def test_inference_calls_between_forward_and_backward_change_nothing(cls) -> None:
    torch.manual_seed(0)
    rnn = cls(6, 5, num_layers=2, bidirectional=True).double()
    x = torch.randn(7, 3, 6, dtype=torch.double, requires_grad=True)
    lengths = torch.tensor([7, 4, 2])

    def grads(interleave: bool) -> list[torch.Tensor]:
        rnn.zero_grad()
        x.grad = None
        y, _ = rnn(x, lengths)
        if interleave:  # scratch-using calls of all shapes while y's graph is alive
            with torch.no_grad():
                rnn(torch.randn(9, 4, 6, dtype=torch.double))
            with torch.inference_mode():
                rnn(torch.randn(3, 2, 6, dtype=torch.double), torch.tensor([3, 1]))
            y2, _ = rnn(torch.randn(5, 2, 6, dtype=torch.double, requires_grad=True))
            y2.sum().backward()  # another backward through the same scratch names
            rnn.zero_grad()
        (y * torch.arange(y.numel(), dtype=torch.double).view_as(y).cos()).sum().backward()
        return [x.grad.clone()] + [p.grad.clone() for p in rnn.parameters()]

    ref = grads(False)
    got = grads(True)
    for a, b in zip(ref, got, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("cls", [FusedLSTM, FusedGRU])
def test_no_grad_output_equals_grad_output_and_survives_later_calls(cls) -> None:
    torch.manual_seed(1)
    rnn = cls(4, 3, bidirectional=True)
    x = torch.randn(6, 2, 4)
    with torch.no_grad():
        y_ng, h_ng = rnn(x, torch.tensor([6, 3]))
        keep = y_ng.clone(), (h_ng[0].clone() if isinstance(h_ng, tuple) else h_ng.clone())
        rnn(torch.randn(6, 2, 4))  # reuses the scratch buffers of the first call
    y, h = rnn(x, torch.tensor([6, 3]))
    torch.testing.assert_close(y_ng, y.detach(), rtol=0, atol=0)
    torch.testing.assert_close(keep[0], y_ng, rtol=0, atol=0)
    h0 = h[0] if isinstance(h, tuple) else h
    h0_ng = h_ng[0] if isinstance(h_ng, tuple) else h_ng
    torch.testing.assert_close(keep[1], h0_ng, rtol=0, atol=0)  # not overwritten by the 2nd call
    torch.testing.assert_close(keep[1], h0.detach(), rtol=0, atol=0)


def test_retain_graph_backward_twice() -> None:
    torch.manual_seed(2)
    rnn = FusedLSTM(3, 4, bidirectional=True)
    x = torch.randn(5, 2, 3, requires_grad=True)
    y, _ = rnn(x, torch.tensor([5, 2]))
    y.sum().backward(retain_graph=True)
    first = x.grad.clone()
    x.grad = None
    y.sum().backward()
    torch.testing.assert_close(x.grad, first, rtol=0, atol=0)
