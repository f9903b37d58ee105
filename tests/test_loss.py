"""Tests for seq2seq.model.loss: label-smoothed, padding-masked cross entropy."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import seq2seq.model.loss as loss_mod
from seq2seq.model.loss import label_smoothed_cross_entropy, output_loss


def _data():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 4, 11, generator=g, requires_grad=True)  # (B, T, V)
    target = torch.tensor([[5, 6, 3, 0], [7, 3, 0, 0], [4, 8, 9, 3]])  # (B, T)
    return logits, target


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_matches_torch_cross_entropy(eps: float) -> None:
    logits, target = _data()
    out = label_smoothed_cross_entropy(logits, target, eps, ignore_index=0)
    ref = F.cross_entropy(logits.reshape(-1, 11), target.reshape(-1), ignore_index=0,
                          label_smoothing=eps, reduction="sum")
    nll = F.cross_entropy(logits.reshape(-1, 11), target.reshape(-1), ignore_index=0,
                          reduction="sum")
    torch.testing.assert_close(out.loss, ref)
    torch.testing.assert_close(out.nll, nll)
    assert out.ntokens == 9
    assert not out.nll.requires_grad
    (g,) = torch.autograd.grad(out.loss, logits)
    (g_ref,) = torch.autograd.grad(ref, logits)
    torch.testing.assert_close(g, g_ref)
    assert (g[target == 0] == 0).all()


def test_padding_positions_do_not_change_loss() -> None:
    logits, target = _data()
    a = label_smoothed_cross_entropy(logits, target, 0.1)
    changed = logits.detach().clone()
    changed[target == 0] = 100.0
    b = label_smoothed_cross_entropy(changed, target, 0.1)
    torch.testing.assert_close(a.loss, b.loss)


def test_flat_inputs_without_padding_and_hand_value() -> None:
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0]])  # (N, V)
    target = torch.tensor([1, 1])
    out = label_smoothed_cross_entropy(logits, target, 0.2, ignore_index=0)
    # uniform row 0: -log p = log 4 for every class, smoothed or not
    lp1 = torch.log_softmax(logits[1], 0)
    expected = torch.log(torch.tensor(4.0)) + (0.8 * -lp1[1] + 0.2 * -lp1.mean())
    torch.testing.assert_close(out.loss, expected)
    assert out.ntokens == 2


def test_bad_epsilon_raises() -> None:
    logits, target = _data()
    with pytest.raises(ValueError, match="label smoothing"):
        label_smoothed_cross_entropy(logits, target, 1.0)


# ------------------------------------------------------------------ the fused output layer
def _layer(N: int = 40, E: int = 5, V: int = 11, dtype=torch.float32):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(N, E, generator=g, dtype=dtype, requires_grad=True)
    w = torch.randn(V, E, generator=g, dtype=dtype, requires_grad=True)
    b = torch.randn(V, generator=g, dtype=dtype, requires_grad=True)
    target = torch.randint(1, V, (N,), generator=g)
    return x, w, b, target


@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("chunk_elements", [16 * 11, 1 << 22])  # 16-row chunks; one chunk
def test_output_loss_matches_torch_linear_and_cross_entropy(eps: float, chunk_elements: int,
                                                            monkeypatch) -> None:
    monkeypatch.setattr(loss_mod, "CHUNK_ELEMENTS", chunk_elements)
    x, w, b, target = _layer()
    out = output_loss(x, w, b, target, eps)
    logits = F.linear(x, w, b)  # (N, V)
    ref = F.cross_entropy(logits, target, label_smoothing=eps, reduction="sum")
    torch.testing.assert_close(out.loss, ref)
    torch.testing.assert_close(out.nll, F.cross_entropy(logits, target, reduction="sum"))
    assert out.ntokens == 40 and not out.nll.requires_grad
    got = torch.autograd.grad(2.5 * out.loss, (x, w, b))  # the incoming gradient scales them
    want = torch.autograd.grad(2.5 * ref, (x, w, b))
    for a, e in zip(got, want, strict=True):
        torch.testing.assert_close(a, e)


def test_output_loss_passes_fp64_gradcheck(monkeypatch) -> None:
    monkeypatch.setattr(loss_mod, "CHUNK_ELEMENTS", 16 * 7)  # several chunks
    x, w, b, target = _layer(N=20, E=3, V=7, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x, w, b: output_loss(x, w, b, target, 0.1).loss,
                                    (x, w, b))


def test_output_loss_without_grad_mode_makes_no_gradients() -> None:
    x, w, b, target = _layer()
    with torch.no_grad():
        out = output_loss(x, w, b, target, 0.1)
    assert not out.loss.requires_grad
    ref = F.cross_entropy(F.linear(x, w, b), target, label_smoothing=0.1, reduction="sum")
    torch.testing.assert_close(out.loss, ref.detach())


def test_output_loss_under_bf16_autocast_is_close_and_keeps_fp32_gradients() -> None:
    x, w, b, target = _layer(N=64, E=16, V=50)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = output_loss(x, w, b, target, 0.1)
    assert out.loss.dtype == torch.float32
    ref = F.cross_entropy(F.linear(x, w, b), target, label_smoothing=0.1, reduction="sum")
    torch.testing.assert_close(out.loss, ref, rtol=2e-2, atol=0.0)
    got = torch.autograd.grad(out.loss, (x, w, b))
    want = torch.autograd.grad(ref, (x, w, b))
    for a, e in zip(got, want, strict=True):
        assert a.dtype == torch.float32
        assert (a - e).norm() < 0.05 * e.norm()
